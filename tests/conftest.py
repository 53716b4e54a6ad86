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


@pytest.fixture(scope="session")
def public_validation(tmp_path_factory):
    """``ridgeline validate --public --format json --out DIR`` run once (a few minutes): (the
    JSON document it printed, DIR), for the tests that read its output."""
    import contextlib
    import io
    import json

    from reports.cli import main

    out = tmp_path_factory.mktemp("validate-public")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["validate", "--public", "--format", "json", "--no-progress", "--out", str(out)]) == 0
    return json.loads(stdout.getvalue()), out


@pytest.fixture(scope="session")
def public_rows(public_validation):
    """The rows of :func:`calibration.public.validate_public`, as that run's JSON carries them."""
    return public_validation[0]["public"]["rows"]
