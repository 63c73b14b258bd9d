"""A bounded load test of the real service on loopback (SQLite; ``bench/service_load.py`` runs it
on a throw-away PostgreSQL too): 100 uploads from 30 students in bursts, every acknowledged upload graded and its
result recorded exactly once, none lost; then 100 more, the service killed with SIGKILL
midway and restarted, and the same holds (the client re-sends what was not acknowledged,
with the same idempotency key, as ``gpt_submit.py`` does).

The queue's properties do not depend on what grading costs, so the service grades with the
stand-in of ``service_standin.py`` (``--grader``); ``test_service.py`` proves the real grading
path end to end.
"""
import collections
import concurrent.futures
import json
import time
import uuid

import pytest

import postgres
from autograder.course import RELEASE
from autograder.service.storage import Store
from service_server import Server, issue, submit

pytestmark = pytest.mark.slow
STUDENTS = 30
UPLOADS = 100
JOBS = 4
POLICY = "attempts_per_day = 0\nattempts_total = 0\nuploads_per_minute = 0\nqueued_per_student = 10\n"


def notebook(solved):
    nb = json.loads((RELEASE / "01_head.ipynb").read_text(encoding="utf-8"))
    nb["metadata"]["note"] = "SOLVED" if solved else "draft"
    return json.dumps(nb).encode()


def plan():
    """(student, key, solved) for 100 uploads: ten students send four at once, twenty send three."""
    uploads = []
    for i in range(STUDENTS):
        for k in range(4 if i < UPLOADS - 3 * STUDENTS else 3):
            uploads.append((f"s{i:02d}", uuid.uuid4().hex, (i + k) % 2 == 0))
    assert len(uploads) == UPLOADS
    return uploads


def send_bursts(server, tokens, uploads, stop_after=None, on_stop=None):
    """Send each student's uploads at once, students concurrently; {key: public id} of the
    acknowledged ones. After ``stop_after`` acknowledgements ``on_stop`` runs (the kill)."""
    acked, lock = {}, __import__("threading").Lock()
    by_student = collections.defaultdict(list)
    for sid, key, solved in uploads:
        by_student[sid].append((key, solved))

    def one(sid, key, solved):
        try:
            status, body = submit(server.url, tokens[sid], [("01_head.ipynb", notebook(solved))], key=key, timeout=20)
        except OSError:
            return
        if status in (200, 201):
            with lock:
                acked[key] = body["id"]
                if stop_after and len(acked) == stop_after:
                    on_stop()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for sid, items in by_student.items():
            for key, solved in items:
                pool.submit(one, sid, key, solved)
    return acked


def wait_all_graded(store, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = store.all_submissions(with_results=False)
        if len(rows) >= count and all(r["state"] == "done" for r in rows):
            return rows
        time.sleep(0.3)
    raise TimeoutError(f"not graded in {timeout} s: " + str(collections.Counter(r["state"] for r in rows)))


def graded_log(out):
    path = out / "standin-graded.log"
    return collections.Counter(path.read_text().split()) if path.exists() else collections.Counter()


def run_load(tmp_path, db_url=""):
    out = tmp_path / "out"
    (tmp_path / "policy.toml").write_text(POLICY)
    roster = {f"s{i:02d}": ("Студент", f"Номер{i}") for i in range(STUDENTS)}
    tokens, _teacher = issue(out, roster, db_url=db_url)
    store = Store(db_url or f"sqlite:///{out / 'service.db'}")
    extra = ("--grader", "service_standin:StandInGrader", "--policy", str(tmp_path / "policy.toml"))
    env = {"STANDIN_SECONDS": "0.1"}

    # 1. bursts, nothing in the way
    server = Server(out, *extra, db_url=db_url, jobs=JOBS, env=env).start(60)
    try:
        first = send_bursts(server, tokens, plan())
        assert len(first) == UPLOADS
        rows = wait_all_graded(store, UPLOADS)
    except BaseException:
        server.stop()
        raise
    assert sorted(r["public_id"] for r in rows) == sorted(first.values())     # none lost, none doubled
    assert all(r["runs"] == 1 for r in rows)
    log = graded_log(out)
    assert set(log) == set(first.values()) and set(log.values()) == {1}        # each graded once

    # 2. the same load, the service killed with SIGKILL midway, restarted, unacknowledged ones re-sent
    second_plan = plan()
    acked = send_bursts(server, tokens, second_plan, stop_after=40, on_stop=server.kill)
    assert 40 <= len(acked) < UPLOADS
    at_kill = {r["public_id"]: r["state"] for r in store.all_submissions(with_results=False)
               if r["public_id"] not in first.values()}
    assert any(state in ("queued", "running") for state in at_kill.values()), "killed with nothing to do"
    server = Server(out, *extra, db_url=db_url, jobs=JOBS, env=env, port=server.port).start(60)
    try:
        for _round in range(5):    # bounded: what was not acknowledged is sent again, same key
            missing = [u for u in second_plan if u[1] not in acked]
            if not missing:
                break
            acked.update(send_bursts(server, tokens, missing))
        assert len(acked) == UPLOADS
        rows = wait_all_graded(store, 2 * UPLOADS)
    finally:
        server.stop()
    second = [r for r in rows if r["public_id"] not in first.values()]
    assert sorted(r["public_id"] for r in second) == sorted(acked.values())   # none lost, none doubled
    results = [r for r in store.all_submissions() if r["public_id"] in acked.values()]
    assert all(r["state"] == "done" and r["result"]["student_id"] == r["student_id"] for r in results)
    log = graded_log(out)
    again = {pid for pid in acked.values() if log[pid] > 1}
    assert all(log[pid] >= 1 for pid in acked.values())
    # only what was being graded at the kill is graded again, and recorded once
    assert again <= {pid for pid, state in at_kill.items() if state == "running"}
    assert {r["public_id"] for r in second if r["runs"] > 1} <= {pid for pid, s in at_kill.items() if s == "running"}
    return len(again)


def test_bursts_and_a_killed_service_on_sqlite(tmp_path):
    run_load(tmp_path)


def run_on_postgresql(tmp_path):
    """The same on a throw-away PostgreSQL (``bench/service_load.py``: it does not fit make test's
    time; ``test_service.py`` runs the real service on PostgreSQL)."""
    with postgres.server("load") as url:
        return run_load(tmp_path, url)
