"""Running the ``ridgeline`` CLI in-process from tests."""

from reports.cli import main


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``ridgeline ARGV...``."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
