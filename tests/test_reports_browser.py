"""Each kind of HTML report opened in a real headless browser (Chromium): its script ran without
an error, table sorting works both ways, every image decoded, and the screenshot is not blank.

The page marks on <body> what its script found (``data-js``, ``data-images``, and with
``#selftest`` in the address ``data-sort-check``); ``--dump-dom`` prints the DOM after the page
loaded. CI installs Chromium (``.ci/run``); without one these tests skip and say why.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) installed: "
                                                        "apt-get install chromium, as .ci/run does")


def open_headless(page, screenshot):
    """(body tag after load, browser stderr) of ``page``, a screenshot saved to ``screenshot``."""
    proc = subprocess.run(
        [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,1500", "--virtual-time-budget=3000",
         f"--screenshot={screenshot}", "--dump-dom", f"{page.as_uri()}#selftest"],
        capture_output=True, text=True, timeout=90)
    body = re.search(r"<body[^>]*>", proc.stdout)
    assert proc.returncode == 0 and body, proc.stderr[-2000:]
    return body.group(0), proc.stderr


def attribute(tag, name):
    found = re.search(rf'{name}="([^"]*)"', tag)
    return found.group(1) if found else None


@pytest.mark.parametrize("kind", ["simulate", "roofline", "validate", "sweep", "serve", "op"])
def test_report_opens_in_a_browser_without_errors(result_reports, kind, tmp_path):
    page = result_reports[kind]
    shot = tmp_path / f"{kind}.png"
    body, log = open_headless(page, shot)
    assert attribute(body, "data-kind") == kind
    assert attribute(body, "data-js") == "ok", body
    assert attribute(body, "data-sort-check") == "ok", body
    # every <img> in the file decoded (naturalWidth > 0)
    assert attribute(body, "data-images") == f"ok {page.read_text().count('<img ')}", body
    assert not re.search(r"Uncaught|SyntaxError|ReferenceError|TypeError", log), log[-2000:]
    # The screenshot is not blank: ink on more than 2% of the pixels, and some contrast.
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3].mean(axis=2)
    assert pixels.shape[0] > 500 and pixels.std() > 0.05
    assert float(np.mean(pixels < 0.9)) > 0.02
    shutil.copy(shot, page.with_name(f"{kind}_screenshot.png"))
