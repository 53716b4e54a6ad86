import pytest


class _Docs(dict):
    """A kind that could not be made here (a sweep without pyarrow) skips the test asking for it."""

    def __missing__(self, kind):
        pytest.skip(f"no {kind} result here (its optional dependency is not installed)")


@pytest.fixture(scope="session")
def result_docs(tmp_path_factory):
    """{kind: JSON document path} for simulate, roofline and validate (see tests/reportdocs.py)."""
    from reportdocs import write_docs

    return _Docs(write_docs(tmp_path_factory.mktemp("results")))


@pytest.fixture(scope="session")
def result_reports(result_docs):
    """{kind: HTML report path}, each made once by ``ridgeline report`` from its JSON document."""
    from reportdocs import quiet

    pytest.importorskip("jinja2")
    out = _Docs()
    for kind, path in result_docs.items():
        out[kind] = path.parent / f"{kind}.html" if path.is_dir() else path.with_name(f"{kind}.html")
        assert quiet("report", str(path), "--out", str(out[kind])) == 0
    return out
