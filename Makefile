PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-dev demo test lint bench

install:
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q -e '.[dev]'

demo: install
	ridgeline hw list

test: install-dev
	$(PYTHON) -m pytest -q -p no:cacheprovider
	$(PYTHON) -m ruff check .

lint:
	$(PYTHON) -m ruff check .

bench: install-dev
	$(PYTHON) benchmarks/run_all.py
