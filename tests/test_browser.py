"""The report and a feedback page in headless Chromium: no console errors, the table sorts and
filters, its links open the right pages. Screenshots go to build/screenshots/ for a person to look at."""
import contextlib
import os
import functools
import http.server
import shutil
import threading

import pytest

from autograder.classrun import report
from autograder.course import ROOT
from test_report import INFO, make_results

pytestmark = pytest.mark.xdist_group("moodle-class")  # reads the graded Moodle class of conftest.py

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "build" / "screenshots"

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (make setup)")
if not os.path.exists(CHROMIUM):
    pytest.skip("no Chromium: `make setup` installs Debian's chromium as root; none could be installed here",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def served(folder):
    """OUT served over HTTP on loopback (a free port)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(args)

    requests = []
    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# nbgrader's feedback template loads MathJax from a CDN; offline that one request fails. Nothing else
# may leave the machine, and the report itself loads nothing at all.
NBGRADER_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"


def local(url):
    return url.startswith(("file:", "data:", "about:", "http://127.0.0.1"))


def open_page(browser, url, errors, external):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.route("**/*", lambda route: route.continue_() if local(route.request.url) else route.abort())
    page.on("request", lambda r: None if local(r.url) else external.append(r.url))
    page.on("console", lambda m: errors.append((m.text, m.location.get("url", "")))
            if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append((f"page error: {exc}", "")))
    page.goto(url)
    page.wait_for_load_state("load")
    return page


def check_clean(errors, external, allowed=()):
    """No console errors and no requests off the machine, but for the ``allowed`` URL prefixes."""
    blocked = [u for u in external if not u.startswith(allowed)] if allowed else list(external)
    assert not blocked, blocked
    real = [(text, where) for text, where in errors
            if not (allowed and where.startswith(allowed) and "Failed to load resource" in text)
            and not where.endswith("/favicon.ico")]    # the bare test server has no icon for nbgrader's page
    assert not real, real


def column(page, index):
    return page.eval_on_selector_all(
        "#students tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{index}].dataset.v)")


def check_report(browser, base, out, results, tag):
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors, external = [], []
    page = open_page(browser, f"{base}/report.html", errors, external)
    assert page.title() == "Отчёт по проверке: GPT с нуля"
    assert page.locator("h2").first.inner_text() == "Требует внимания"
    # the charts are inline images that decoded
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and all(w > 100 for w in widths)
    page.screenshot(path=str(SHOTS / f"{tag}-report.png"), full_page=True)
    total = 2 + 5                          # id, name, five tasks: the total's column
    page.click("#students thead th:nth-child(8)")
    ascending = [float(v) for v in column(page, total)]
    assert ascending == sorted(ascending) and len(ascending) == len(results)
    page.click("#students thead th:nth-child(8)")
    assert [float(v) for v in column(page, total)] == sorted(ascending, reverse=True)
    page.click("#students thead th:nth-child(1)")
    ids = column(page, 0)
    assert ids == sorted(ids, key=str.lower) or ids == sorted(ids)
    # filter by id, then by a mistake's words, then only rows with problems
    some = ids[-1]
    page.fill("#filter", some)
    assert column(page, 0) == [some]
    assert page.inner_text("#shown") == "1"
    page.fill("#filter", "")
    page.check("#only-problems")
    flagged = {sid for sid, r in results.items() if report.status_text(r) != "ок"}
    assert set(column(page, 0)) == flagged
    page.uncheck("#only-problems")
    assert len(column(page, 0)) == len(results)
    page.screenshot(path=str(SHOTS / f"{tag}-report-sorted.png"), full_page=False)
    check_clean(errors, external)
    # every feedback link opens that student's page, with its header
    sid, result = next((s, r) for s, r in results.items() if r.feedback)
    notebook, relative = next(iter(result.feedback.items()))
    link = page.locator(f'#s-{sid} a[href="{relative}"]')
    assert link.count() == 1
    with page.expect_navigation():
        link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(relative)
    header = page.locator("#grading-summary")
    assert header.count() == 1 and sid in header.inner_text()
    page.screenshot(path=str(SHOTS / f"{tag}-feedback.png"), full_page=False)
    # and back to the report, at that student's row
    with page.expect_navigation():
        page.click("#grading-summary a")
    assert page.url.endswith(f"report.html#s-{sid}")
    check_clean(errors, external, (NBGRADER_CDN,))
    page.close()


def test_report_in_chromium_from_disk(browser, tmp_path):
    results = make_results(tmp_path)
    report.write(tmp_path, results, INFO)
    check_report(browser, tmp_path.as_uri(), tmp_path, results, "synthetic")


@pytest.mark.slow
def test_graded_class_in_chromium_served(browser, moodle_class):
    from autograder.results import StudentResult
    import json
    out = moodle_class.out
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))
    results = {sid: StudentResult.from_json(r) for sid, r in state["students"].items()}
    assert results["1002"].submission
    with served(out) as base:
        check_report(browser, base, out, results, "graded")
