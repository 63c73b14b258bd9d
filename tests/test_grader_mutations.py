"""The grader on one class of mutated submissions (tests/mutations.py).

Every bug and every correct alternative is pasted between the release markers
and graded end to end by ``python -m autograder grade`` (sandboxed, as
by default). To keep this quick the class is
packed: a bug student carries at most one bug per task (the reference body in
the tasks it leaves alone), an alternative student at most one alternative
per task. Each task is graded with reference classes swapped in for the
others, so a student's bugs are independent measurements: the tests check
that each bug loses points on its own task, is named there, and that no task
is charged for a bug that is not its own.
"""
import csv
import html
import json
import pathlib
import subprocess
import sys
import time

import nbformat
import pytest

from autograder import checks, mistakes, notebooks

from mutations import ALTERNATIVES, BUGS  # tests/ is on sys.path (pytest's rootdir insertion)

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "gpt"
SOURCE = ROOT / "source" / "gpt"
REFERENCE_ID = "ref_student"
# Text that must never reach a student's feedback page: the hidden tests, the
# grader's modules (reference, mistakes, probe) and the instructor's solutions.
FORBIDDEN = ["BEGIN HIDDEN", "END HIDDEN", "autograder.hidden", "autograder", "BEGIN SOLUTION",
             "reference", "Reference", "_Configured", "StandIn", "causal_mean", "grader_probe", "run_cases",
             "swapped_globals", "MISTAKES", "head_wei_not_applied", "mha_sum_heads", "_with_loss"]


def pack(table, prefix):
    """{student id: {task: key}}: the i-th entry of each task goes to student i."""
    by_task = {}
    for key, entry in table.items():
        by_task.setdefault(entry[0], []).append(key)
    students = {}
    for task, keys in by_task.items():
        for i, key in enumerate(keys):
            students.setdefault(f"{prefix}{i:02d}", {})[task] = key
    return students


BUG_STUDENTS = pack(BUGS, "bugs_")
ALT_STUDENTS = pack(ALTERNATIVES, "alts_")
STUDENT_OF = {key: sid for table in (BUG_STUDENTS, ALT_STUDENTS) for sid, keys in table.items()
              for key in keys.values()}


def _reference_bodies():
    return {task: notebooks.solution_body(notebooks.read(SOURCE / f"{name}.ipynb"), task)
            for task, name in notebooks.NOTEBOOK_OF_TASK.items()}


def _write_student(folder, bodies):
    folder.mkdir(parents=True)
    for name in notebooks.NOTEBOOKS:
        nb = notebooks.read(RELEASE / f"{name}.ipynb")
        for task, notebook in notebooks.NOTEBOOK_OF_TASK.items():
            if notebook == name:
                notebooks.paste_body(nb, task, bodies[task])
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("mutations")
    submissions = base / "submissions"
    references = _reference_bodies()
    _write_student(submissions / REFERENCE_ID, references)
    for students, table in ((BUG_STUDENTS, BUGS), (ALT_STUDENTS, ALTERNATIVES)):
        for sid, keys in students.items():
            bodies = dict(references, **{task: table[key][1] for task, key in keys.items()})
            _write_student(submissions / sid, bodies)
    out = base / "out"
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "grades.csv", encoding="utf-8")))
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))
    print(f"\ngraded {len(rows)} mutated students in {time.time() - started:.0f} s")
    return {row["student_id"]: row for row in rows}, state, out


def _verdict(state, sid, task):
    return state[sid]["verdicts"].get(task, {})


def _mistake_keys(state, sid, task):
    return [key for key, _ in _verdict(state, sid, task).get("mistakes", [])]


def _full(row, task):
    return float(row[task]) == checks.POINTS[task]


def test_mutations_are_well_formed():
    assert len(ALTERNATIVES) >= 15 and len(BUGS) >= 40
    assert {task for task, _ in ALTERNATIVES.values()} == set(checks.TASKS)
    assert {task for task, _, _ in BUGS.values()} == set(checks.TASKS)
    named = {key for table in mistakes.MISTAKES.values() for key in table}
    generic = {"not_implemented", "no_return", "not_pair", "class_missing", "exception", "wrong_shape",
               "future_leak", "wrong_output", "no_grad", "wrong_grad", "no_dropout", "dropout_in_eval",
               "dropout_on_output", "dropout_wrong", "dropout_error", "loss_without_targets",
               "flat_logits_without_targets", "generate_broken", "no_loss", "loss_not_scalar", "wrong_loss"}
    assert {m for _, _, m in BUGS.values()} <= named | generic
    # every student of the packed class holds at most one mutation per task
    assert len(STUDENT_OF) == len(BUGS) + len(ALTERNATIVES)


def test_every_student_is_graded(graded):
    rows, _, _ = graded
    assert set(rows) == {REFERENCE_ID} | set(BUG_STUDENTS) | set(ALT_STUDENTS)


def test_reference_gets_full_points(graded):
    rows, state, _ = graded
    row = rows[REFERENCE_ID]
    assert row["total"] == "10" and row["status"] == "ok", row
    assert all(not _mistake_keys(state, REFERENCE_ID, t) for t in checks.TASKS)


@pytest.mark.parametrize("key", sorted(ALTERNATIVES))
def test_alternative_gets_full_points(graded, key):
    rows, state, _ = graded
    sid = STUDENT_OF[key]
    row = rows[sid]
    task = ALTERNATIVES[key][0]
    assert _full(row, task) and not _mistake_keys(state, sid, task), (row, _mistake_keys(state, sid, task))
    assert row["total"] == "10" and row["status"] == "ok", row


@pytest.mark.parametrize("key", sorted(BUGS))
def test_bug_loses_points_on_its_task(graded, key):
    rows, state, _ = graded
    task = BUGS[key][0]
    row = rows[STUDENT_OF[key]]
    assert not _full(row, task), (row, _mistake_keys(state, STUDENT_OF[key], task))


@pytest.mark.parametrize("sid", sorted(BUG_STUDENTS))
def test_no_task_is_charged_for_another_tasks_bug(graded, sid):
    """A task without a bug keeps full points; a task with one names only its own bug."""
    rows, state, _ = graded
    for task in checks.TASKS:
        key = BUG_STUDENTS[sid].get(task)
        if key is None:
            assert _full(rows[sid], task), (task, rows[sid], _mistake_keys(state, sid, task))
        else:
            assert _mistake_keys(state, sid, task) == [BUGS[key][2]], (key, _mistake_keys(state, sid, task))


@pytest.mark.parametrize("key", sorted(BUGS))
def test_bug_is_named_in_the_feedback(graded, key):
    _, state, out = graded
    task, _, expected = BUGS[key]
    sid = STUDENT_OF[key]
    found = dict(_verdict(state, sid, task).get("mistakes", []))
    assert expected in found, f"{key}: expected {expected!r}, grader named {list(found)}"
    page = out / "feedback" / sid / f"{notebooks.NOTEBOOK_OF_TASK[task]}.html"
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert found[expected][:60] in text, f"{page.name} does not show: {found[expected]!r}"


@pytest.mark.parametrize("sid", [REFERENCE_ID] + sorted(ALT_STUDENTS) + sorted(BUG_STUDENTS))
def test_feedback_shows_no_hidden_tests_or_grader_source(graded, sid):
    _, _, out = graded
    pages = sorted((out / "feedback" / sid).glob("*.html"))
    assert len(pages) == len(notebooks.NOTEBOOK_OF_TASK), pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        leaked = [s for s in FORBIDDEN if s in text]
        assert not leaked, f"{page.name} shows {leaked}"
