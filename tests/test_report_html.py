"""mtl-collect --format html: one self-contained page, opened in real headless Chromium (tests/browser.py).

The hand-written study (tests/runfolders.py) plus a run whose name and a failed run whose reason are
HTML, rendered through the CLI; then the browser must show every cell of the markdown grid, decode every
curve and the forest plot of the Δ cells (the first image, above the first table), log no error and ask for
nothing but the file itself and its data: URIs. A second test breaks the
page on purpose (a script error, console.error, a corrupt image, an external load) and requires the
checker to see each fault, so a passing render is not a blind checker. The full-page screenshot goes to
test-artifacts/ (MTL_TEST_ARTIFACTS overrides), path printed.

No Chromium, or one that cannot start: the browser tests skip with a message (MTL_REQUIRE_BROWSER=1, as
scripts/test.sh sets after installing it, makes that a failure).
"""
from __future__ import annotations

import os
import re
import struct
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import pytest
from browser import Browser, BrowserError, find_browser, skip_or_fail
from runfolders import config, write_run, write_study

from mtl_cluster.cli.collect import collect_main
from mtl_cluster.collect.scan import load_runs
from mtl_cluster.collect.compare import Report, build_report
from mtl_cluster.collect.cost import add_cost
from mtl_cluster.collect.image_tests import add_image_tests
from mtl_cluster.collect.plots import forest_png
from mtl_cluster.collect.html import FOREST_ALT, FOREST_CAPTION
from mtl_cluster.collect.tables import grid_rows, reference_line, epoch_line, image_test_line, to_markdown

REPO = Path(__file__).resolve().parents[1]
HOSTILE_NAME = 'AlexNet-Smile <b>bold</b> & "quoted"'
HOSTILE_REASON = "loss is nan <img src=x onerror=alert(1)> at epoch 2"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Report]:
    """The study rendered by the CLI (format from the .html suffix), and the Report it shows."""
    base = tmp_path_factory.mktemp("html")
    write_study(base / "results")
    write_run(base / "results", config(name=HOSTILE_NAME, loss_weights=[0.0, 1.0, 0.0, 0.0], lr_rate=0.005),
              {"smile_acc": 80.0}, folder="hostile/name")
    write_run(base / "results", config(name="AlexNet-Smile", loss_weights=[0.0, 1.0, 0.0, 0.0], seed=9),
              state="failed", epoch_done=1, reason=HOSTILE_REASON, folder="hostile/reason")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)   # paths as the user sees them (results/...); the curves are read from there
        assert collect_main(["results", "--out", "report.html", "--cost"]) == 0
        runs = load_runs(Path("results"), "best")
        report = build_report(runs)
        add_image_tests(report, runs.frame)
        add_cost(report, runs.frame)
    return base / "report.html", report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    exe = find_browser()
    if exe is None:
        skip_or_fail("no Chromium on PATH (looked for chromium, chromium-browser, google-chrome; or set MTL_BROWSER)")
    try:
        b = Browser(exe)
    except BrowserError as e:
        skip_or_fail(f"Chromium ({exe}) does not start: {e}")
    yield b
    b.close()


def artifacts() -> Path:
    out = Path(os.environ.get("MTL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- the file itself (no browser) -----------------------------------------------------------------
class _Tags(HTMLParser):
    """Tags, their attributes and whether every non-void element was closed in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"</{tag}> closes nothing open")


def test_the_file_is_self_contained_and_escaped(page) -> None:
    path, report = page
    text = path.read_text(encoding="utf-8")
    tags = _Tags()
    tags.feed(text)
    assert not tags.errors and not tags.stack, (tags.errors, tags.stack)
    names = [t for t, _ in tags.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    csp = [a for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    imgs = [a["src"] or "" for t, a in tags.tags if t == "img"]
    sections_tasks = sum(len({c.task for c in s.columns}) for s in report.sections)
    assert len(imgs) == 1 + sections_tasks and all(s.startswith("data:image/png;base64,iVBORw0KGgo") for s in imgs)
    # the forest plot first, before the first table: the same PNG forest_png draws for the Report
    first = next(a for t, a in tags.tags if t == "img")
    assert first["alt"] == FOREST_ALT and imgs[0] == _data_uri(forest_png(report))
    assert names.index("img") < names.index("table") and escape(FOREST_CAPTION) in text
    external = [v for _, a in tags.tags for v in a.values() if v and re.match(r"(?i)\s*(https?:|//|file:)", v)]
    assert not external
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def _data_uri(png: bytes | None) -> str:
    import base64

    assert png is not None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def test_every_markdown_line_is_on_the_page(page) -> None:
    """What the md format says, the page says: a line added to the markdown renderer later (a total, a ratio)
    fails here until the HTML shows it too. Table rows are checked cell by cell in the browser test, the run
    list row by row there."""
    path, report = page
    text = _Text()
    text.feed(path.read_text(encoding="utf-8"))
    shown = "\n".join(text.chunks)
    missing = []
    for line in to_markdown(report).splitlines():
        if line.startswith("## runs not in the table"):
            break
        if line.strip() and " | " not in line:
            line = re.sub(r"^(#+ |> |- |\*\*)", "", line).removesuffix("**")
            if line not in shown:
                missing.append(line)
    assert not missing, missing


# -- in the browser -------------------------------------------------------------------------------
def test_the_report_renders_in_chromium(browser, page, capsys) -> None:
    path, report = page
    check = browser.check(path)
    shot = artifacts() / "report_html.png"
    shot.write_bytes(check.screenshot)
    with capsys.disabled():
        print(f"\n  browser: {browser.version}; screenshot of the HTML report: {shot}")
    assert check.errors == []
    assert check.requests and all(u.startswith(("file://", "data:")) for u in check.requests), check.requests
    probe = check.probe
    # every cell of the markdown grid, in order, as text (escaped markup shows as the literal characters)
    assert probe["tables"] == [grid_rows(s, report.cost) for s in report.sections]
    assert report.cost is not None and probe["tables"][0][0][-1] == grid_rows(report.sections[0], report.cost)[0][-1]
    assert any(HOSTILE_NAME in row[0] for t in probe["tables"] for row in t)
    assert probe["shown"], "a table or an image has no size on the page"
    images = probe["images"]
    assert len(images) == 1 + sum(len({c.task for c in s.columns}) for s in report.sections)
    assert all(i["complete"] and i["width"] >= 600 and i["height"] >= 400 for i in images), images
    # the forest plot is the page's first image, decoded at the size forest_png drew it, above every table
    width, height = _png_size(forest_png(report) or b"")
    forest = browser_eval(browser, path, FIRST_IMAGE)
    assert forest["alt"] == FOREST_ALT and forest["caption"] == FOREST_CAPTION, forest
    assert forest["complete"] and forest["naturalWidth"] == width > 0 and forest["naturalHeight"] == height, forest
    assert images[0]["width"] == width and images[0]["height"] == height
    assert forest["beforeFirstTable"] and forest["shownWidth"] > 0 and forest["top"] < forest["tableTop"], forest
    problems = {row[0]: row for t in probe["problems"] for row in t[1:]}
    for p in report.problems:
        assert problems[p.path][1] == p.state and problems[p.path][3] == p.reason
    assert problems["results/hostile/reason"][3].startswith(HOSTILE_REASON)
    # a row lacking one of its task's columns (the 10-group accuracy) is not a run without curves
    no_curve = [path for path, row in problems.items() if row[1] == "no curve"]
    assert not [p for p in no_curve if "Gender_Smile_Emotion_Age" in p], no_curve
    text = probe["text"]
    assert epoch_line(report) in text
    for sec in report.sections:
        for ref in sec.references:
            assert reference_line(ref) in text
        for t in sec.image_tests:
            assert image_test_line(t) in text
    assert check.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(check.screenshot) > 50_000


# The page's first image after decoding, and where it sits against the first results table.
FIRST_IMAGE = """(async () => {
  const img = document.images[0];
  await img.decode().catch(() => null);
  const table = document.querySelector('table.results');
  const fig = img.closest('figure');
  return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          shownWidth: img.offsetWidth, top: img.getBoundingClientRect().top,
          tableTop: table.getBoundingClientRect().top,
          beforeFirstTable: Boolean(img.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING),
          caption: fig && fig.querySelector('figcaption') ? fig.querySelector('figcaption').textContent : null};
})()"""


def browser_eval(browser: Browser, page: Path, expression: str) -> dict:
    """Open ``page`` in a fresh tab, wait for its load, evaluate ``expression`` (a promise) and return its value."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    try:
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Page.enable", {}, session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_event("Page.loadEventFired", session)
        result = browser.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                   "returnByValue": True}, session)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]
    finally:
        browser.call("Target.closeTarget", {"targetId": target})


BROKEN = {   # fault -> (markup put before </body>, drop the CSP meta?, what the checker must report)
    "exception": ('<script>throw new Error("injected-exception")</script>', True, "injected-exception"),
    "console": ('<script>console.error("injected-console-error")</script>', True, "injected-console-error"),
    "corrupt image": ('<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB" alt="broken">', False,
                      "image"),
    "external load": ('<img src="http://127.0.0.1:9/external.png" alt="external">', True, "request"),
    "external under the CSP": ('<img src="http://127.0.0.1:9/blocked.png" alt="blocked">'
                               '<script>throw new Error("must-not-run")</script>', False, "Content Security Policy"),
}


@pytest.mark.parametrize("fault", list(BROKEN))
def test_the_checker_sees_a_broken_page(browser, page, tmp_path, fault) -> None:
    path, _ = page
    markup, drop_csp, expect = BROKEN[fault]
    html = path.read_text(encoding="utf-8")
    if drop_csp:
        html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    broken = tmp_path / "broken.html"
    broken.write_text(html.replace("</body>", markup + "</body>"), encoding="utf-8")
    check = browser.check(broken, screenshot=False)
    external = [u for u in check.requests if u.startswith("http")]
    if expect == "image":
        widths = [i["width"] for i in check.probe["images"]]
        assert widths.count(0) == 1 and all(w > 0 for w in widths[:-1]), widths
    elif expect == "request":
        assert external == ["http://127.0.0.1:9/external.png"] and any("external.png" in e for e in check.errors)
    else:
        assert any(expect in e for e in check.errors), check.errors
    if fault == "external under the CSP":   # the policy itself works: the load is refused, the script never runs
        blocked = [e for e in check.errors if e.startswith("load failed: http://127.0.0.1:9/blocked.png")]
        assert blocked and blocked[0].endswith("csp"), check.errors
        assert not any("must-not-run" in e for e in check.errors), check.errors
