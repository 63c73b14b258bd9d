"""The submission service's logic in process (fast): hostile uploads refused in Russian, the
course policy, fair queueing, durable storage, tokens and sessions, and the web app's
separation of students and instructors, CSRF and headers (Starlette's test client, the
stand-in grader of ``service_standin.py``). ``test_service.py`` runs the real thing."""
import io
import re
import socket
import sqlite3
import stat
import time
import zipfile

import pytest

from autograder.course import NOTEBOOKS, RELEASE
from autograder.service import auth, policy as course_policy, uploads
from autograder.service.queue import Dispatcher, fair_order
from autograder.service.storage import Store
from service_standin import StandInGrader

NOTEBOOK = (RELEASE / "01_head.ipynb").read_bytes()
MB = 2**20


def kit_zip(extra=()):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(RELEASE.rglob("*")):
            if path.is_file():
                zf.write(path, "gpt/" + path.relative_to(RELEASE).as_posix())
        zf.writestr("gpt/.ipynb_checkpoints/01_head-checkpoint.ipynb", NOTEBOOK)
        for name, data in extra:
            zf.writestr(name, data)
    return buffer.getvalue()


def zip_of(*entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                zf.writestr(entry, b"target")
            else:
                zf.writestr(*entry)
    return buffer.getvalue()


# ---- uploads

def test_the_kit_zip_gives_the_seven_notebooks_and_nothing_else():
    parsed = uploads.parse([("student-kit.zip", kit_zip())], 40 * MB)
    assert sorted(parsed.notebooks) == sorted(NOTEBOOKS)
    assert parsed.warnings == []
    assert parsed.notebooks["01_head"] == NOTEBOOK


def test_loose_notebooks_with_browser_names_and_a_missing_one():
    files = [(f"{name} (1).ipynb" if name == "04_block" else f"{name}.ipynb", (RELEASE / f"{name}.ipynb").read_bytes())
             for name in NOTEBOOKS if name != "06_training"]
    parsed = uploads.parse(files + [("notes.txt", b"x")], 40 * MB)
    assert sorted(parsed.notebooks) == sorted(n for n in NOTEBOOKS if n != "06_training")
    assert any("06_training" in w for w in parsed.warnings)
    assert any("notes.txt" in w for w in parsed.warnings)


def test_a_notebook_uploaded_as_html_or_py_says_which_file_to_upload_instead():
    """«Download as» gives 01_head.html: the student is told to upload 01_head.ipynb itself."""
    with pytest.raises(uploads.Refused) as refused:
        uploads.parse([("01_head.html", b"<html></html>")], 40 * MB)
    assert str(refused.value) == ("«01_head.html» — не ноутбук, а его копия в другом формате: загрузите сам "
                                  "01_head.ipynb (в Jupyter: File → Save, файл .ipynb)")
    parsed = uploads.parse([("01_head.ipynb", NOTEBOOK), ("gpt.zip", zip_of(("gpt/04_block.py", b"class Block: pass"))),
                            ("01_head.html", b"<html></html>")], 40 * MB)
    assert parsed.warnings[0] == ("«gpt/04_block.py» — не ноутбук, а его копия в другом формате: загрузите сам "
                                  "04_block.ipynb (в Jupyter: File → Save, файл .ipynb)")
    assert parsed.warnings[-1] == "не относятся к заданию и не проверялись: «01_head.html»"   # 01_head came itself


@pytest.mark.parametrize("entries, words", [
    ([("../../etc/01_head.ipynb", NOTEBOOK)], "за его пределы"),
    ([("gpt/../../01_head.ipynb", NOTEBOOK)], "за его пределы"),
    ([("/etc/01_head.ipynb", NOTEBOOK)], "абсолютный путь"),
    ([("C:\\Users\\01_head.ipynb", NOTEBOOK)], "абсолютный путь"),
    ([("01_head.ipynb", b"not json")], "не ноутбук Jupyter (не JSON)"),
    ([("01_head.ipynb", b'{"cells": 5}')], "не ноутбук Jupyter"),
    ([("01_head.ipynb", NOTEBOOK[:len(NOTEBOOK) * 3 // 4])], "«01_head.ipynb» обрезан или повреждён"),
    ([("01_head.ipynb", b"\xff\xfe\x00")], "не ноутбук Jupyter"),
    ([("01_head.ipynb", NOTEBOOK), ("gpt/01_Head.ipynb", NOTEBOOK)], "два файла для 01_head"),
    ([("homework.pdf", b"%PDF-1.4")], "нет ни одного ноутбука"),
    ([("01_head.ipynb", b" " * (3 * MB))], "сжат подозрительно сильно"),
])
def test_hostile_archives_are_refused_with_the_reason(entries, words):
    with pytest.raises(uploads.Refused, match=re.escape(words)):
        uploads.parse([("gpt.zip", zip_of(*entries))], 40 * MB)


def test_links_devices_encryption_and_garbage_are_refused():
    link = zipfile.ZipInfo("gpt/01_head.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(uploads.Refused, match="ссылка"):
        uploads.parse([("gpt.zip", zip_of(link))], 40 * MB)
    fifo = zipfile.ZipInfo("gpt/01_head.ipynb")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    with pytest.raises(uploads.Refused, match="не обычный файл"):
        uploads.parse([("gpt.zip", zip_of(fifo))], 40 * MB)
    encrypted = bytearray(zip_of(("01_head.ipynb", NOTEBOOK)))
    for at in (6, encrypted.rfind(b"PK\x01\x02") + 8):   # the flag, in the local and the central header
        encrypted[at] |= 1
    with pytest.raises(uploads.Refused, match="зашифрован"):
        uploads.parse([("gpt.zip", bytes(encrypted))], 40 * MB)
    with pytest.raises(uploads.Refused, match="не zip"):
        uploads.parse([("gpt.zip", b"PK\x03\x04garbage")], 40 * MB)
    with pytest.raises(uploads.Refused, match="больше 1 МБ"):
        uploads.parse([("01_head.ipynb", NOTEBOOK), ("big.ipynb", b"x" * MB)], MB)
    many = zip_of(*[(f"f{i}.txt", b"") for i in range(uploads.MAX_ENTRIES + 1)])
    with pytest.raises(uploads.Refused, match="больше 500 файлов"):
        uploads.parse([("gpt.zip", many)], 40 * MB)


def test_hostile_names_are_shown_printable_and_short():
    name = "a\x1b[31m\nb<script>" + "x" * 200 + ".ipynb"
    parsed = uploads.parse([("gpt.zip", zip_of(("01_head.ipynb", NOTEBOOK), (name, b"junk")))], 40 * MB)
    assert list(parsed.notebooks) == ["01_head"]
    shown = [w for w in parsed.warnings if "не относятся" in w][0]
    assert "\x1b" not in shown and "\n" not in shown and "?[31m?b<script>" in shown
    assert len(shown) < 150


# ---- the policy

DAY = 24 * 3600


def attempt(i, created, state="done", total=0.0, error="", priority=0):
    result = {"tasks": {"head": {"task": "head", "points": total}}, "error": error} if state == "done" else None
    return {"id": i, "created_at": created, "state": state, "result": result, "priority": priority}


def test_attempt_limits_count_what_the_grader_did_not_fail():
    rules = course_policy.Policy(attempts_per_day=2, attempts_total=4, timezone="UTC")
    now = 10 * DAY + 3600
    earlier = [attempt(1, now - DAY), attempt(2, now - 60)]
    assert rules.refusal(now, earlier) is None
    assert rules.left(now, earlier) == {"today": 1, "total": 2}
    assert "на сегодня" in rules.refusal(now, earlier + [attempt(3, now - 30)])
    assert rules.refusal(now, earlier + [attempt(3, now - 30, error="worker crashed")]) is None
    assert rules.refusal(now, earlier + [attempt(3, now - 30, state="failed")]) is None
    assert "исчерпаны попытки: 4 из 4" in rules.refusal(now + DAY, earlier + [attempt(3, now - 30), attempt(4, now)])
    waiting = [attempt(i, now - DAY - i, state="queued") for i in range(3)]
    assert "в очереди" in course_policy.Policy(queued_per_student=3).refusal(now, waiting)


def test_the_deadline_refuses_or_marks_late_and_hides_points_before_it():
    deadline = "2026-05-31T23:59:00+03:00"
    refuse = course_policy.Policy(deadline=deadline, after_deadline="refuse", before_deadline="mistakes")
    late = course_policy.Policy(deadline=deadline)
    before, after = refuse.deadline_at - 60, refuse.deadline_at + 60
    assert refuse.refusal(before, []) is None and "срок сдачи прошёл (31.05.2026 23:59)" in refuse.refusal(after, [])
    assert late.refusal(after, []) is None and late.after(after) and not late.after(before)
    assert not refuse.shows_points(before) and refuse.shows_points(after) and late.shows_points(before)
    assert any("только найденные ошибки" in line for line in refuse.describe())


def test_the_best_or_the_last_finished_attempt_counts():
    rows = [attempt(1, 1, total=2.0), attempt(2, 2, total=1.0), attempt(3, 3, total=9.0, error="boom"),
            attempt(4, 4, state="queued")]
    assert course_policy.Policy(counts="best").counted(rows)["id"] == 1
    assert course_policy.Policy(counts="last").counted(rows)["id"] == 2
    assert course_policy.Policy().counted([attempt(1, 1, state="queued")]) is None


def test_a_policy_file_is_checked_key_by_key(tmp_path):
    good = tmp_path / "policy.toml"
    good.write_text('[policy]\nattempts_per_day = 3\ncounts = "last"\ndeadline = "2026-06-01T12:00"\n')
    rules = course_policy.load(good)
    assert (rules.attempts_per_day, rules.counts, rules.shown(rules.deadline_at)) == (3, "last", "01.06.2026 12:00")
    for text, words in (('counts = "first"', "counts = 'first'"), ("attempts_total = -1", "не меньше 0"),
                        ('deadline = "завтра"', "нужна дата"), ('colour = "red"', "неизвестные ключи: colour"),
                        ('timezone = "Mars/Olympus"', "нет такого часового пояса"), ("x = = 1", "не TOML")):
        good.write_text(text)
        with pytest.raises(course_policy.PolicyError, match=words):
            course_policy.load(good)


def test_the_serve_command_names_a_bad_folder_roster_or_busy_port_before_it_starts(tmp_path, capsys):
    from autograder.__main__ import main
    taken = tmp_path / "a-file"
    taken.write_text("x")
    no_id = tmp_path / "names.csv"
    no_id.write_text("name,mail\nAnna,a@example.org\n", encoding="utf-8")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        for args, words in [(["--out", str(taken)], "— файл, а не папка"),
                            (["--out", str(taken / "service")], "— файл, папку в нём не создать"),
                            (["--out", str(tmp_path / "s"), "--issue-tokens", "--roster", "nope.csv"],
                             "--roster: нет такого файла: nope.csv"),
                            (["--out", str(tmp_path / "s"), "--issue-tokens", "--roster", str(no_id)],
                             f"--roster {no_id}: в списке студентов нет столбца id"),
                            (["--out", str(tmp_path / "s"), "--port", port], f"--port {port}: порт уже занят")]:
            assert main(["serve", *args]) == 2
            assert words in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# ---- fair queueing

def test_a_burst_waits_its_turns():
    rows = [{"id": i, "student_id": "burst", "priority": 0, "queued_at": float(i)} for i in range(5)]
    rows += [{"id": 10 + i, "student_id": f"s{i}", "priority": 0, "queued_at": 10.0 + i} for i in range(3)]
    rows.append({"id": 99, "student_id": "s9", "priority": 1, "queued_at": 0.0})   # a re-grade
    order = [r["student_id"] for r in fair_order(rows, {})]
    assert order == ["burst", "s0", "s1", "s2", "burst", "burst", "burst", "burst", "s9"]
    served = fair_order(rows[5:8] + rows[:1], {"s0": 100.0})   # the one served last waits for the others
    assert [r["student_id"] for r in served] == ["burst", "s1", "s2", "s0"]


# ---- storage and the dispatcher

@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'service.db'}")


def test_an_acknowledged_upload_survives_a_crash_and_is_recorded_once(store, tmp_path):
    store.upsert_student("anna", {"first_name": "Анна"})
    row, new = store.add_submission("anna", {"01_head": NOTEBOOK}, source="test", idempotency_key="k1")
    again, new_again = store.add_submission("anna", {"01_head": b"other"}, source="test", idempotency_key="k1")
    assert new and not new_again and again["public_id"] == row["public_id"]
    assert store.files_of(row["id"]) == {"01_head": NOTEBOOK} and len(row["digest"]) == 64
    assert store.claim(row["id"]) and not store.claim(row["id"])
    assert store.requeue_running() == 1                      # the service died while grading it
    assert store.submission(row["public_id"])["state"] == "queued"
    assert store.claim(row["id"])
    assert store.finish(row["id"], {"tasks": {}}, "fp") and not store.finish(row["id"], {"tasks": {}}, "fp")
    assert store.submission(row["public_id"])["runs"] == 2
    with sqlite3.connect(tmp_path / "service.db") as db:     # a stored file that changed is not graded
        db.execute("UPDATE service_files SET data = ? WHERE name = '01_head'", (b"tampered",))
    with pytest.raises(ValueError, match="does not match its digest"):
        store.files_of(row["id"])


def test_the_dispatcher_grades_everything_once_one_per_student_at_a_time(store, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_SECONDS", "0.05")
    grader = StandInGrader(tmp_path / "out")
    ids = []
    for i in range(12):
        sid = f"s{i % 4}"
        store.upsert_student(sid)
        ids.append(store.add_submission(sid, {"01_head": b"SOLVED"}, source="test")[0]["public_id"])
    dispatcher = Dispatcher(store, grader, course_policy.Policy(), workers=3)
    dispatcher.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(r["state"] != "done" for r in store.all_submissions()):
            time.sleep(0.05)
    finally:
        dispatcher.stop(timeout=10)
    rows = store.all_submissions()
    assert [r["state"] for r in rows] == ["done"] * 12 and all(r["runs"] == 1 for r in rows)
    graded = (tmp_path / "out" / "standin-graded.log").read_text().split()
    assert sorted(graded) == sorted(ids)
    for sid in ("s0", "s1", "s2", "s3"):     # never two of one student at once
        spans = sorted((r["started_at"], r["finished_at"]) for r in rows if r["student_id"] == sid)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    published = (tmp_path / "out" / "standin-published.log").read_text().split("\n")
    assert {line.split()[0] for line in published if line} == {"s0", "s1", "s2", "s3"}


# ---- tokens

def test_tokens_and_sessions_are_stored_hashed(store, tmp_path):
    store.upsert_student("anna")
    token = auth.new_token()
    store.add_token(auth.hashed(token), "student", "anna")
    key, identity = auth.sign_in(store, token)
    assert identity.student_id == "anna" and auth.from_cookie(store, key).csrf == identity.csrf
    assert auth.sign_in(store, token + "x") is None and auth.from_cookie(store, "nope") is None
    assert auth.from_bearer(store, f"Bearer {token}").student_id == "anna"
    raw = (tmp_path / "service.db").read_bytes() + (tmp_path / "service.db-wal").read_bytes()
    assert token.encode() not in raw and key.encode() not in raw
    assert auth.csrf_ok(identity, identity.csrf) and not auth.csrf_ok(identity, "x") and not auth.csrf_ok(identity, None)
    rates = auth.Rates()
    assert [rates.allow("k", 2, now=t) for t in (0, 1, 2, 61)] == [True, True, False, True]


# ---- the web app (in process, stand-in grader)

@pytest.fixture
def web(store, tmp_path, monkeypatch):
    from starlette.testclient import TestClient
    from autograder.service import app as web_app
    monkeypatch.setenv("STANDIN_SECONDS", "0")
    tokens = {}
    for sid in ("anna", "boris"):
        store.upsert_student(sid)
        tokens[sid] = auth.new_token()
        store.add_token(auth.hashed(tokens[sid]), "student", sid)
    tokens["teacher"] = auth.new_token()
    store.add_token(auth.hashed(tokens["teacher"]), "instructor")
    dispatcher = Dispatcher(store, StandInGrader(tmp_path / "out"), course_policy.Policy(), workers=1)
    dispatcher.start()
    service = web_app.Service(store, dispatcher, course_policy.Policy(), tmp_path / "out")
    app = web_app.create(service)

    def client(who):
        c = TestClient(app)
        if who:
            assert c.post("/signin", json={"token": tokens[who]}).status_code == 200
        return c
    yield client, tokens, store
    dispatcher.stop(timeout=10)


def csrf_of(client):
    return re.search(r'name="csrf" content="([^"]+)"', client.get("/").text).group(1)


def wait_done(store, public_id):
    deadline = time.monotonic() + 20
    while store.submission(public_id)["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    return store.submission(public_id)


def test_students_see_only_their_own_attempts_and_never_the_desk(web):
    client, tokens, store = web
    anna, boris, teacher = client("anna"), client("boris"), client("teacher")
    sent = anna.post("/upload", files={"files": ("gpt.zip", kit_zip())},
                     headers={"X-CSRF-Token": csrf_of(anna)})
    assert sent.status_code == 201, sent.text
    pid = sent.json()["id"]
    assert wait_done(store, pid)["state"] == "done"
    assert anna.get(f"/api/submissions/{pid}").json()["finished"]
    assert pid in anna.get("/fragment/attempts").text
    assert boris.get(f"/api/submissions/{pid}").status_code == 404      # as for an id that does not exist
    assert pid not in boris.get("/fragment/attempts").text
    assert boris.get(f"/attempt/{pid}/01_head.html").status_code == 404
    for path in ("/desk", "/desk/fragment", "/desk/report.html", "/desk/grades.csv", "/desk/student/anna",
                 f"/desk/attempt/{pid}/01_head.html", "/desk/moodle_grades.csv"):
        assert anna.get(path).status_code == 403, path
        assert client(None).get(path).status_code == 403, path
        assert client(None).get(path, headers={"Authorization": f"Bearer {tokens['anna']}"}).status_code == 403
    assert teacher.get("/desk").status_code == 200
    grades = teacher.get("/desk/grades.csv").text.splitlines()
    assert grades[0].startswith("student_id,head") and grades[1].startswith("anna,0,")
    assert pid in teacher.get("/desk/student/anna").text


def test_csrf_origin_and_the_bearer_client(web):
    client, tokens, store = web
    anna = client("anna")
    files = {"files": ("01_head.ipynb", NOTEBOOK)}
    assert anna.post("/upload", files=files).status_code == 403                       # no CSRF token
    assert anna.post("/upload", files=files, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert anna.post("/upload", files=files, headers={"X-CSRF-Token": csrf_of(anna),
                                                      "Origin": "https://evil.example"}).status_code == 403
    assert client(None).post("/signin", json={"token": tokens["anna"]},
                             headers={"Origin": "https://evil.example"}).status_code == 403
    assert client(None).post("/signin", json={"token": "guess"}).status_code == 403
    pasted = client(None)      # the whole link pasted into the form (no script needed)
    signed = pasted.post("/signin", data={"token": f"https://gpt.example.org/signin#{tokens['anna']}"},
                         follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    assert pasted.post("/signout", data={"csrf": "forged"}).status_code == 403
    assert pasted.post("/signout", data={"csrf": csrf_of(pasted)}, follow_redirects=False).status_code == 303
    assert pasted.get("/fragment/attempts").status_code == 403          # the session is gone
    bearer = {"Authorization": f"Bearer {tokens['anna']}", "Idempotency-Key": "abc"}
    first = client(None).post("/api/submit", files=files, headers=bearer)
    again = client(None).post("/api/submit", files=files, headers=bearer)
    assert first.status_code == 201 and again.status_code == 200 and again.json()["repeated"]
    assert first.json()["id"] == again.json()["id"] and len(store.submissions_of("anna")) == 1
    refused = client(None).post("/api/submit", files={"files": ("x.zip", zip_of(("../01_head.ipynb", NOTEBOOK)))},
                                headers={"Authorization": f"Bearer {tokens['anna']}"})
    assert refused.status_code == 400 and "за его пределы" in refused.json()["error"]
    assert client(None).post("/api/submit", files=files,
                             headers={"Authorization": "Bearer nope"}).status_code == 403


def test_every_response_carries_the_security_headers(web):
    client, tokens, store = web
    anna = client("anna")
    for response in (anna.get("/"), client(None).get("/signin"), anna.get("/static/app.js"),
                     client("teacher").get("/desk/report.html")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    cookie = client(None).post("/signin", json={"token": tokens["anna"]}).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and tokens["anna"].lower() not in cookie
    big = anna.post("/upload", content=b"x" * (42 * MB), headers={"X-CSRF-Token": csrf_of(anna),
                                                                  "Content-Type": "multipart/form-data; boundary=x"})
    assert big.status_code == 413 and "больше 40 МБ" in big.json()["error"]


def test_mistakes_only_before_the_deadline_then_everything(web, monkeypatch):
    client, tokens, store = web
    anna = client("anna")
    service = anna.app.state.service
    service.policy = course_policy.Policy(deadline="2100-01-01T00:00:00+00:00", before_deadline="mistakes")
    sent = anna.post("/upload", files={"files": ("01_head.ipynb", NOTEBOOK)}, headers={"X-CSRF-Token": csrf_of(anna)})
    pid = sent.json()["id"]
    wait_done(store, pid)
    shown = anna.get(f"/api/submissions/{pid}").json()
    assert shown["total"] is None and all("points" not in t for t in shown["tasks"]) and shown["pages"] == []
    fragment = anna.get("/fragment/attempts").text
    assert "из 2" not in fragment and "после срока сдачи" in fragment and "идёт в оценку" not in fragment
    assert 'class="lost"' not in fragment and 'class="ok"' not in fragment
    service.clock = lambda: service.policy.deadline_at + 1            # the deadline has passed
    assert anna.get(f"/api/submissions/{pid}").json()["total"] == 0
    late = anna.post("/upload", files={"files": ("01_head.ipynb", NOTEBOOK)}, headers={"X-CSRF-Token": csrf_of(anna)})
    assert late.status_code == 201 and "после срока" in late.json()["warnings"][0]
    service.policy = course_policy.Policy(deadline="2000-01-01T00:00:00+00:00", after_deadline="refuse")
    refused = anna.post("/upload", files={"files": ("01_head.ipynb", NOTEBOOK)}, headers={"X-CSRF-Token": csrf_of(anna)})
    assert refused.status_code == 403 and "срок сдачи прошёл" in refused.json()["error"]


def test_the_desk_regrades_what_an_older_grader_graded_and_exports(web):
    client, tokens, store = web
    teacher = client("teacher")
    store.upsert_student("anna", {"first_name": "Анна", "last_name": "Петрова"})
    row, _ = store.add_submission("anna", {"01_head": b"SOLVED"}, source="test")
    assert wait_done(store, row["public_id"])["fingerprint"] == "stand-in"
    with store.engine.begin() as c:                                    # graded by an older grader
        from autograder.service.storage import submissions
        c.execute(submissions.update().values(fingerprint="older"))
    assert ">1<" in teacher.get("/desk/fragment").text.replace("<b id=\"n-stale\">", ">")
    assert teacher.post("/desk/regrade", data={"csrf": "forged"}).status_code == 403
    desk = teacher.get("/desk").text
    csrf = re.search(r'name="csrf" content="([^"]+)"', desk).group(1)
    assert teacher.post("/desk/regrade", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    deadline = time.monotonic() + 20
    while store.submission(row["public_id"])["fingerprint"] != "stand-in" and time.monotonic() < deadline:
        time.sleep(0.05)
    again = store.submission(row["public_id"])
    assert again["fingerprint"] == "stand-in" and again["runs"] == 2 and again["state"] == "done"
    grades = teacher.get("/desk/grades.csv").text.splitlines()
    assert grades[1].startswith("anna,2,0,0,0,0,2,")
    sheet = teacher.get("/desk/moodle_grades.csv")
    assert sheet.status_code == 200 and "attachment" in sheet.headers["content-disposition"]
    assert "Петрова" in teacher.get("/desk/report.html").text


def test_a_crashed_grading_is_tried_once_more_and_costs_no_attempt(web):
    client, tokens, store = web
    anna = client("anna")
    sent = anna.post("/upload", files={"files": ("01_head.ipynb", NOTEBOOK.replace(b'"cells"', b'"CRASH": 1, "cells"'))},
                     headers={"X-CSRF-Token": csrf_of(anna)})
    pid = sent.json()["id"]
    deadline = time.monotonic() + 20
    while store.submission(pid)["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    row = store.submission(pid)
    assert row["state"] == "done" and row["runs"] == 2 and "crashed" in row["result"]["error"]
    shown = anna.get("/fragment/attempts").text
    assert "не засчитана в лимит" in shown and "crashed" not in shown     # the reason is the instructor's
    assert course_policy.Policy().left(time.time(), store.submissions_of("anna"))["total"] == 30
