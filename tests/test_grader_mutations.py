"""The grader on mutated submissions, end to end (a sample of tests/mutations.py).

Every mutation is scored in-process by tests/test_scoring.py (seconds). This
suite proves what only the real command can: bodies pasted between the release
markers and graded by ``python -m autograder grade`` (sandboxed, as by default)
get the same points and names through nbgrader, the kernel and the gradebook;
the feedback page shows each named mistake; no task is charged for another
task's bug; no page shows hidden tests or grader source. The class is packed:
a bug student carries at most one bug per task (the reference body in the
tasks it leaves alone); the sample is the first ``BUG_SAMPLE`` bug students and
``ALT_SAMPLE`` alternative students (``mutations.BUG_STUDENTS``,
``ALT_STUDENTS``), graded in the one run of tests/conftest.py's class beside
the demo and damaged submissions that tests/test_grader.py reads.
"""
import html

import pytest

from autograder.course import TASK, TASK_KEYS

from mutations import (ALT_STUDENTS, ALTERNATIVES, BUG_STUDENTS, BUGS,  # tests/ is on sys.path
                       STUDENT_OF, expected_keys)                         # (pytest's rootdir insertion)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("graded-class")]  # tests/conftest.py grades it

REFERENCE_ID = "student_reference"   # the reference bodies, graded in the same class
# Text that must never reach a student's feedback page: the hidden tests, the
# grader's modules (reference, mistakes, probe) and the instructor's solutions.
FORBIDDEN = ["BEGIN HIDDEN", "END HIDDEN", "autograder.hidden", "autograder", "BEGIN SOLUTION",
             "reference", "Reference", "_Configured", "StandIn", "causal_mean", "grader_probe", "run_cases",
             "swapped_globals", "MISTAKES", "head_wei_not_applied", "mha_sum_heads", "_with_loss"]


@pytest.fixture
def graded(graded_class):
    """(rows, result records, OUT) of the class graded in tests/conftest.py, which holds the sample."""
    out, rows, state, _, _ = graded_class
    return rows, state, out


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
    assert {REFERENCE_ID} | set(BUG_STUDENTS) | set(ALT_STUDENTS) <= set(rows)


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
        text = page.read_text(encoding="utf-8").replace(sid, "<student>")  # its own id: student_reference
        leaked = [s for s in FORBIDDEN if s in text]
        assert not leaked, f"{page.name} shows {leaked}"
