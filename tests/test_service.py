"""The real service end to end: ``python -m autograder serve`` on uvicorn on loopback, grading
sandboxed through the batch grader (SQLite here, a throw-away PostgreSQL below).

In headless Chromium a student signs in through her personal link, drops a kit zip on the page, watches
the result appear without reloading and opens a feedback page; a second student sends his
notebooks with the kit's client (``gpt_submit.py``) and cannot reach the first one's pages;
instructor pages refuse a student; the instructor's desk shows the report and follows a new
attempt live (its counters and the report in its frame), exports and the nbgrader gradebook
hold the counted attempts. Screenshots: build/screenshots/service/.
Four real gradings in all (a few CPU-seconds each).
"""
import base64
import csv
import importlib.util
import io
import shutil
import sys
import time

import pytest
from nbgrader.api import Gradebook

import browser
import postgres
from autograder import demo
from autograder.course import RELEASE, ROOT
from autograder.service.storage import Store
from service_server import Server, call, issue, submit, wait_finished

pytestmark = pytest.mark.slow
SHOTS = browser.SHOTS / "service"
ROSTER = {"anna": ("Анна", "Петрова"), "boris": ("Борис", "Смирнов")}


def kit_client():
    spec = importlib.util.spec_from_file_location("gpt_submit", RELEASE / "gpt_submit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kit_folder(base, student):
    """The unpacked kit with ``student``'s notebooks from the example class (as a student has it)."""
    folder = base / "kits" / student / "gpt"
    shutil.copytree(RELEASE, folder)
    for notebook in (base / "class" / student).glob("*.ipynb"):
        shutil.copy(notebook, folder / notebook.name)
    return folder


def kit_zip(base, student):
    sys.path.insert(0, str(ROOT / "tools"))
    import student_kit
    return student_kit.build(base / f"{student}.zip", kit_folder(base, student))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    base = tmp_path_factory.mktemp("service")
    demo.build_class(base / "class")
    out = base / "out"
    tokens, teacher = issue(out, ROSTER)
    with Server(out, jobs=1) as server:
        yield server, tokens, teacher, base
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert not [t for t in [*tokens.values(), teacher] if t in log], "a token reached the log"


def test_a_student_in_the_browser_and_another_with_the_kit_client(service):
    if browser.missing():
        pytest.skip(browser.missing())
    server, tokens, teacher, base = service
    SHOTS.mkdir(parents=True, exist_ok=True)
    upload = kit_zip(base, "student_no_scale")
    with browser.chromium() as chromium:
        errors, external = [], []
        page = browser.open_page(chromium, f"{server.url}/signin#{tokens['anna']}", errors, external)
        page.wait_for_url(f"{server.url}/", timeout=15000)
        assert "#" not in page.url and "Петрова" in page.inner_text("header")
        transfer = page.evaluate_handle(   # the zip dropped on the page, as from a file manager
            """([b64, name]) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
               const dt = new DataTransfer(); dt.items.add(new File([bytes], name, {type: 'application/zip'}));
               return dt; }""", [base64.b64encode(upload.read_bytes()).decode(), upload.name])
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        assert upload.name in page.inner_text("#chosen")
        page.click("#send")
        page.wait_for_selector("#upload-status.ok", timeout=15000)
        assert "Принято" in page.inner_text("#upload-status")
        page.wait_for_selector("[data-state=queued], [data-state=running]", timeout=15000)
        page.screenshot(path=str(SHOTS / "student-queued.png"), full_page=True)
        page.wait_for_selector("[data-state=done]", timeout=240000)   # no reload: the page follows
        text = page.inner_text("#attempts")
        assert "8 из 10" in text and "Head\t0 из 2" in text and "идёт в оценку" in text
        assert "нет масштабирования" in text       # the mistake, named
        page.screenshot(path=str(SHOTS / "student-result.png"), full_page=True)
        with page.expect_navigation():
            page.click("text=01_head")
        assert "Попытка 1" in page.inner_text("#attempt-summary")
        page.screenshot(path=str(SHOTS / "student-feedback.png"))
        feedback_url = page.url
        browser.check_clean(errors, external)

        # the second student, with the kit's client; the first one's pages stay hers
        folder = kit_folder(base, "student_reference")
        lines = []
        state = kit_client().submit(folder, ask=lambda _prompt: f"{server.url}/signin#{tokens['boris']}",
                                    out=lines.append)
        assert state["total"] == 10 and any("Итого: 10 из 10" in line for line in lines), lines
        assert (folder / ".gpt_submit.json").stat().st_mode & 0o077 == 0
        anna_attempt = feedback_url.split("/attempt/")[1].split("/")[0]
        for path in (f"/attempt/{anna_attempt}/01_head.html", f"/api/submissions/{anna_attempt}"):
            assert call(server.url + path, tokens["boris"])[0] in (403, 404)
        boris = chromium.new_page()
        boris.goto(f"{server.url}/signin#{tokens['boris']}")
        boris.wait_for_url(f"{server.url}/")
        assert boris.goto(feedback_url).status == 404
        assert boris.goto(f"{server.url}/api/submissions/{anna_attempt}").status == 404
        assert anna_attempt not in boris.goto(f"{server.url}/").text()
        for path in ("/desk", "/desk/report.html", "/desk/grades.csv", "/desk/student/anna"):
            assert boris.goto(server.url + path).status == 403
            assert call(server.url + path, tokens["anna"])[0] == 403

        # the instructor's desk
        errors, external = [], []
        desk = browser.open_page(chromium, f"{server.url}/signin#{teacher}", errors, external)
        desk.wait_for_url(f"{server.url}/desk", timeout=15000)
        frame = desk.frame_locator("#report")
        frame.locator("#students").wait_for(timeout=30000)
        assert "Петрова" in frame.locator("#students").inner_text()
        desk.screenshot(path=str(SHOTS / "desk.png"), full_page=True)
        # live: another attempt lands while the desk is open; counters and report follow it
        untouched = [(p.name, p.read_bytes()) for p in sorted(RELEASE.glob("0*.ipynb"))]
        assert submit(server.url, tokens["boris"], untouched)[0] == 201
        deadline = time.monotonic() + 240     # polled from here: the page's policy forbids eval
        while time.monotonic() < deadline and not (
                desk.inner_text("#n-done") == "3"
                and "проверено в этот раз\t3" in frame.locator("#run").locator("xpath=following-sibling::table").inner_text()):
            time.sleep(0.5)
        assert desk.inner_text("#n-done") == "3"
        assert "проверено в этот раз\t3" in frame.locator("#run").locator("xpath=following-sibling::table").inner_text()
        desk.goto(f"{server.url}/desk/student/anna")
        desk.screenshot(path=str(SHOTS / "desk-student.png"), full_page=True)
        browser.check_clean(errors, external)
        grades = desk.request.get(f"{server.url}/desk/grades.csv").text()
    rows = {row["student_id"]: row for row in csv.DictReader(io.StringIO(grades))}
    assert rows["anna"]["total"] == "8" and rows["boris"]["total"] == "10"
    with Gradebook(f"sqlite:///{server.out / 'course' / 'gradebook.db'}") as gb:   # formgrader's data
        assert gb.find_submission("gpt", "anna").score == 8
        assert gb.find_submission("gpt", "boris").score == 10


def test_the_service_on_postgresql(tmp_path):
    """Service tables and the course gradebook in a throw-away PostgreSQL: one real grading, the
    counted attempt in nbgrader's gradebook there, nothing in SQLite, the password in no log."""
    try:
        server_of = postgres.server("service")
        url = server_of.__enter__()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"no PostgreSQL: {exc}")
    try:
        out = tmp_path / "out"
        folder = demo.build_class(tmp_path / "class") / "student_reference"
        tokens, teacher = issue(out, {"anna": ("Анна", "Петрова")}, db_url=url)
        files = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.ipynb"))]
        with Server(out, db_url=url) as server:
            status, ack = submit(server.url, tokens["anna"], files, key="one")
            assert status == 201, ack
            state = wait_finished(server.url, tokens["anna"], ack["id"])
            assert state["total"] == 10
            status, again = submit(server.url, tokens["anna"], files, key="one")   # a client's re-send
            assert status == 200 and again["id"] == ack["id"]
            assert call(f"{server.url}/desk/grades.csv", teacher)[0] == 403   # a bearer is not a session
        assert not (out / "service.db").exists() and not (out / "course" / "gradebook.db").exists()
        assert len(Store(url).all_submissions()) == 1
        with Gradebook(url) as gb:
            assert gb.find_submission("gpt", "anna").score == 10
        assert url.split("@")[0].split(":")[-1] not in server.log.read_text()   # the password
    finally:
        server_of.__exit__(None, None, None)
