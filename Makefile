PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-dev demo test lint bench fuzz

install:
	$(PIP) install -q -e '.[html]'

install-dev:
	$(PIP) install -q -e '.[dev]'

# The main job on bundled defaults: the catalog, a roofline of LLM decode on two GPUs, a simulated
# tensor-parallel decode step on an 8-GPU server with its trace, 1,000 requests of the Azure
# conversation trace served on an H100, and the published-measurement check.
demo: install
	mkdir -p out
	ridgeline hw list
	ridgeline roofline --hw a100-sxm-80gb --hw h100-sxm --model llama-2-7b --phase decode --batch 1 --context 1024 --out out/roofline.png
	ridgeline simulate --hw hgx-h100 --tp 8 --model llama-3.1-70b --phase decode --batch 64 --context 4096 --trace out/trace.json --plot out/timeline.png --html out/simulate.html
	ridgeline serve --hw h100-sxm --model llama-3.1-8b --requests azure-conv --num-requests 1000 --trace out/serve-trace.json --plot out/serve.png
	ridgeline validate --public --out out/validation
	@echo "wrote out/roofline.png, out/trace.json (open in ui.perfetto.dev), out/timeline.png, out/simulate.html, out/serve.png, out/serve-trace.json, out/validation/"

test: install-dev
	$(PYTHON) -m pytest -p no:cacheprovider
	$(PYTHON) -m ruff check .

lint:
	$(PYTHON) -m ruff check .

bench: install-dev
	$(PYTHON) benchmarks/run_all.py

# The long fuzz run: 10,000 generated and mutated inputs over every input surface (CLI arguments,
# hardware YAML, config.json, workload YAML, ONNX, request traces, sweep specs), counted per surface; exit 1 on any traceback,
# time-out or non-finite figure. SEED=N for another draw.
SEED ?= 0
fuzz: install-dev
	$(PYTHON) tests/fuzz/run.py --cases 10000 --seed $(SEED) --jobs 2
