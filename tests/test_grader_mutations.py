"""The grader on mutated submissions, end to end (a sample of tests/mutations.py).

Every mutation is scored in-process by tests/test_scoring.py (seconds). This
suite proves what only the real command can: bodies pasted between the release
markers and graded by ``python -m autograder grade`` (sandboxed, as by default)
get the same points and names through nbgrader, the kernel and the gradebook;
the feedback page shows each named mistake; no task is charged for another
task's bug; no page shows hidden tests or grader source. The class is packed:
a bug student carries at most one bug per task (the reference body in the
tasks it leaves alone); the sample is the first ``BUG_SAMPLE`` bug students and
``ALT_SAMPLE`` alternative students.
"""
import csv
import html
import json
import pathlib
import subprocess
import sys
import time

import pytest

from autograder.course import TASK, TASK_KEYS

from mutations import ALTERNATIVES, BUGS, expected_keys  # tests/ is on sys.path (pytest's rootdir insertion)
from students import reference_bodies, write_student

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE_ID = "ref_student"
BUG_SAMPLE, ALT_SAMPLE = 4, 2
# Text that must never reach a student's feedback page: the hidden tests, the
# grader's modules (reference, mistakes, probe) and the instructor's solutions.
FORBIDDEN = ["BEGIN HIDDEN", "END HIDDEN", "autograder.hidden", "autograder", "BEGIN SOLUTION",
             "reference", "Reference", "_Configured", "StandIn", "causal_mean", "grader_probe", "run_cases",
             "swapped_globals", "MISTAKES", "head_wei_not_applied", "mha_sum_heads", "_with_loss"]


def pack(table, prefix):
    """{student id: {task: key}}: the i-th entry of each task goes to student i."""
    by_task = {}
    for key, entry in table.items():  # entry: (task, body, ...)
        by_task.setdefault(entry[0], []).append(key)
    students = {}
    for task, keys in by_task.items():
        for i, key in enumerate(keys):
            students.setdefault(f"{prefix}{i:02d}", {})[task] = key
    return students


BUG_STUDENTS = dict(list(pack(BUGS, "bugs_").items())[:BUG_SAMPLE])
ALT_STUDENTS = dict(list(pack(ALTERNATIVES, "alts_").items())[:ALT_SAMPLE])
STUDENT_OF = {key: sid for table in (BUG_STUDENTS, ALT_STUDENTS) for sid, keys in table.items()
              for key in keys.values()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("mutations")
    submissions = base / "submissions"
    references = reference_bodies()
    write_student(submissions / REFERENCE_ID, references)
    for students, table in ((BUG_STUDENTS, BUGS), (ALT_STUDENTS, ALTERNATIVES)):
        for sid, keys in students.items():
            bodies = dict(references, **{task: table[key][1] for task, key in keys.items()})
            write_student(submissions / sid, bodies)
    out = base / "out"
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))["students"]
    print(f"\ngraded {len(rows)} mutated students in {time.time() - started:.0f} s")
    return {row["student_id"]: row for row in rows}, state, out


def _verdict(state, sid, task):
    return state[sid]["tasks"].get(task, {})


def _mistake_keys(state, sid, task):
    return [key for key, _ in _verdict(state, sid, task).get("mistakes", [])]


def _full(row, task):
    return float(row[task]) == TASK[task].points


def _expected(key):
    return list(expected_keys(BUGS[key][2]))


SAMPLED_BUGS = sorted(key for keys in BUG_STUDENTS.values() for key in keys.values())
SAMPLED_ALTERNATIVES = sorted(key for keys in ALT_STUDENTS.values() for key in keys.values())


def test_every_student_is_graded(graded):
    rows, _, _ = graded
    assert set(rows) == {REFERENCE_ID} | set(BUG_STUDENTS) | set(ALT_STUDENTS)


def test_reference_gets_full_points(graded):
    rows, state, _ = graded
    row = rows[REFERENCE_ID]
    assert row["total"] == "10" and row["status"] == "ok", row
    assert all(not _mistake_keys(state, REFERENCE_ID, t) for t in TASK_KEYS)


@pytest.mark.parametrize("key", SAMPLED_ALTERNATIVES)
def test_alternative_gets_full_points(graded, key):
    rows, state, _ = graded
    sid = STUDENT_OF[key]
    row = rows[sid]
    task = ALTERNATIVES[key][0]
    assert _full(row, task) and not _mistake_keys(state, sid, task), (row, _mistake_keys(state, sid, task))
    assert row["total"] == "10" and row["status"] == "ok", row


@pytest.mark.parametrize("key", SAMPLED_BUGS)
def test_bug_loses_points_on_its_task(graded, key):
    rows, state, _ = graded
    task = BUGS[key][0]
    row = rows[STUDENT_OF[key]]
    assert not _full(row, task), (row, _mistake_keys(state, STUDENT_OF[key], task))


@pytest.mark.parametrize("sid", sorted(BUG_STUDENTS))
def test_no_task_is_charged_for_another_tasks_bug(graded, sid):
    """A task without a bug keeps full points; a task with one names only its own bug."""
    rows, state, _ = graded
    for task in TASK_KEYS:
        key = BUG_STUDENTS[sid].get(task)
        if key is None:
            assert _full(rows[sid], task), (task, rows[sid], _mistake_keys(state, sid, task))
        else:
            assert set(_expected(key)) <= set(_mistake_keys(state, sid, task)), (key, _mistake_keys(state, sid, task))


@pytest.mark.parametrize("key", SAMPLED_BUGS)
def test_bug_is_named_in_the_feedback(graded, key):
    _, state, out = graded
    task = BUGS[key][0]
    sid = STUDENT_OF[key]
    found = dict(_verdict(state, sid, task).get("mistakes", []))
    page = out / "feedback" / sid / f"{TASK[task].notebook}.html"
    text = html.unescape(page.read_text(encoding="utf-8"))
    for expected in _expected(key):
        assert expected in found, f"{key}: expected {expected!r}, grader named {list(found)}"
        assert found[expected][:60] in text, f"{page.name} does not show: {found[expected]!r}"


@pytest.mark.parametrize("sid", [REFERENCE_ID] + sorted(ALT_STUDENTS) + sorted(BUG_STUDENTS))
def test_feedback_shows_no_hidden_tests_or_grader_source(graded, sid):
    _, _, out = graded
    pages = sorted((out / "feedback" / sid).glob("*.html"))
    assert len(pages) == len(TASK_KEYS), pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        leaked = [s for s in FORBIDDEN if s in text]
        assert not leaked, f"{page.name} shows {leaked}"
