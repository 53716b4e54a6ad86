import pytest


@pytest.fixture(scope="session")
def result_docs(tmp_path_factory):
    """{kind: JSON document path} for simulate, roofline and validate (see tests/reportdocs.py)."""
    from reportdocs import write_docs

    return write_docs(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def result_reports(result_docs):
    """{kind: HTML report path}, each made once by ``ridgeline report`` from its JSON document."""
    from reportdocs import quiet

    pytest.importorskip("jinja2")
    out = {}
    for kind, path in result_docs.items():
        out[kind] = path.parent / f"{kind}.html" if path.is_dir() else path.with_name(f"{kind}.html")
        assert quiet("report", str(path), "--out", str(out[kind])) == 0
    return out
