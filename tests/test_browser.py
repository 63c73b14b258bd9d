"""The report and a feedback page in headless Chromium: no console errors, the table sorts and
filters, its links open the right pages. Screenshots go to build/screenshots/ for a person to look at."""
import pytest

from autograder.classrun import report
from browser import SHOTS, check_clean, chromium, missing, open_page, served
from test_report import INFO, make_results

pytestmark = pytest.mark.xdist_group("moodle-class")  # reads the graded Moodle class of conftest.py
if missing():
    pytest.skip(missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


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
    check_clean(errors, external)
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


def test_a_feedback_page_runs_no_student_script(browser, tmp_path):
    """A feedback page made from hostile markdown and outputs runs nothing, opened from disk or
    served; and were the sanitiser ever to miss a script, the page's policy still refuses it."""
    from autograder.worker.feedback import FeedbackExporter
    from test_feedback import RESOURCES, SCRIPTED, _hostile
    page_html, _ = FeedbackExporter().from_notebook_node(_hostile(), RESOURCES)
    (tmp_path / "secret.txt").write_text("secret")
    folder = tmp_path / "feedback" / "s1"
    folder.mkdir(parents=True)
    (folder / "01_head.html").write_text(page_html, encoding="utf-8")
    missed = page_html.replace("</body>", f"<script>{SCRIPTED}; fetch('../../secret.txt')</script>"
                                          f"<img src=x onerror=\"{SCRIPTED}\"></body>", 1)
    (folder / "missed.html").write_text(missed, encoding="utf-8")
    requests = []
    with served(tmp_path, requests) as base:
        for url in (folder.as_uri() + "/01_head.html", folder.as_uri() + "/missed.html",
                    f"{base}/feedback/s1/01_head.html", f"{base}/feedback/s1/missed.html"):
            errors, external = [], []
            page = open_page(browser, url, errors, external)
            assert page.evaluate("typeof window.pwned") == "undefined", url
            assert page.locator("table").count() >= 1 and "Шаг" in page.inner_text("body")
            refused = [text for text, _ in errors if "Content Security Policy" in text]
            assert ("missed" in url) == bool(refused), (url, errors)
            assert not external, external
            page.close()
    assert not [r for r in requests if "secret" in r], requests
