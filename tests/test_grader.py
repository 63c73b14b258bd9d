"""End to end: the real command grades a small class of real notebooks."""
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("graded-class")]  # tests/conftest.py grades it

from autograder.classrun import collect
from autograder.course import TASK
from lms import CLEAN_ENV  # tests/ is on sys.path (pytest's rootdir insertion)

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def graded(graded_class):
    """(OUT, grades.csv rows, result records, stdout, flat LMS zip) of tests/conftest.py's class."""
    return graded_class


def test_columns_and_totals(graded):
    out, rows, _, stdout, _ = graded
    with open(out / "grades.csv", encoding="utf-8") as f:
        assert f.readline().strip() == "student_id,head,multihead,feedforward,block,gpt_model,total,status"
    assert rows["student_reference"]["total"] == "10" and rows["student_reference"]["status"] == "ok"
    assert rows["student_untouched"]["total"] == "0"
    assert "student_reference" in stdout


@pytest.mark.parametrize("sid, task, key", [
    ("student_no_scale", "head", "no_scale"),
    ("student_pre_norm", "block", "pre_norm"),
    ("student_softmax_loss", "gpt_model", "softmax_before_loss"),
    ("student_no_projection", "multihead", "no_projection"),
])
def test_mistake_costs_only_its_task_and_is_named(graded, sid, task, key):
    out, rows, state, _, _ = graded
    full = {"head": "2", "multihead": "1", "feedforward": "1", "block": "2", "gpt_model": "4"}
    for other, points in full.items():
        if other == task:
            assert float(rows[sid][other]) < float(points)
        else:
            assert rows[sid][other] == points, (sid, other)
    mistakes = state[sid]["tasks"][task]["mistakes"]
    assert key in [m[0] for m in mistakes]
    page = (out / "feedback" / sid / f"{TASK[task].notebook}.html").read_text(encoding="utf-8")
    assert mistakes[0][1].split(":")[0] in page


def test_feedback_never_shows_hidden_tests_or_reference(graded):
    out = graded[0]
    pages = list((out / "feedback").rglob("*.html"))
    assert len(pages) >= 5 * 6
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "BEGIN HIDDEN" not in text and "autograder" not in text, page


def test_bad_submissions_get_a_reason_and_keep_the_rest(graded):
    _, rows, _, _, _ = graded
    row = rows["student_broken"]
    assert "invalid notebook 01_head: not JSON" in row["status"]
    # 02 cut in half: its whole cells before the cut are read, the class was after it
    assert re.search(r"repaired 02_multihead_attention: file cut short or damaged: its first \d+ whole cells read, "
                     r"class MultiHeadAttention not found: release cell inserted", row["status"]), row["status"]
    assert "missing 03_feedforward" in row["status"]
    assert (row["head"], row["multihead"], row["feedforward"]) == ("0", "0", "0")
    assert (row["block"], row["gpt_model"]) == ("2", "4")
    assert rows["student_renamed"]["total"] == "10"


def test_report_is_one_page_with_its_charts_inline(graded):
    out = graded[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/svg+xml;base64,") >= 2
    assert "student_no_scale" in page and "нет масштабирования" in page


def test_regrading_same_input_changes_nothing_and_grades_only_new_students(graded, tmp_path):
    out, rows, _, _, _ = graded
    folder = out.parent / "submissions"
    shutil.copytree(folder / "student_reference", folder / "student_new")
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "проверяется заново: 1" in proc.stderr
    again = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    assert again.pop("student_new")["total"] == "10"
    assert again == rows


def test_flat_lms_zip_is_collected(graded):
    archive = graded[4]
    folder = collect.extract(archive, archive.parent / "flat")
    students = collect.collect(folder)
    assert "reference" in students and len(students["reference"].notebooks) == 7


@pytest.mark.parametrize("sid, expected, reason", [
    ("student_nbformat3", "10", "ok"),
    ("student_deleted_cells", "10", "repaired 01_head: test cell missing: release cell inserted"),
    ("student_reordered_cells", "10", "ok"),
    ("student_duplicated_cells", "10", "repaired 04_block: cell 'block_solution' repeated: the last one kept"),
    ("student_renamed_solution", None, "repaired 01_head: nbgrader metadata restored by content"),
    ("student_output_flood", "10", "output cut in 03_feedforward"),
    ("student_endless_loop", "10", "timeout in 02_multihead_attention"),
    ("student_kernel_dies", "10", "kernel died in 04_block"),
    ("student_head_kills_kernel", "8", "kernel died in 01_head"),
    ("student_huge_file", "9", "invalid notebook 02_multihead_attention: over 100 MB"),
    ("student_odd_names", "10", "ok"),     # 03_feedforward under a name of no encoding: taken by content
])
def test_damaged_submissions_get_a_row_and_the_points_the_rest_earns(graded, sid, expected, reason):
    rows = graded[1]
    row = rows[sid]
    if expected is not None:
        assert row["total"] == expected, row
    assert row["status"] == "ok" if reason == "ok" else reason in row["status"], row
    others = [t for t in ("head", "multihead", "feedforward", "gpt_model") if t != "block"]
    if sid == "student_kernel_dies":   # dies after Block's test cell: only Block at risk
        assert all(row[t] == {"head": "2", "multihead": "1", "feedforward": "1", "gpt_model": "4"}[t] for t in others)
    if sid == "student_head_kills_kernel":  # later steps import Head and die too: graded alone
        assert (row["head"], row["multihead"], row["block"], row["gpt_model"]) == ("0", "1", "2", "4")
    if sid == "student_renamed_solution":
        assert (row["multihead"], row["feedforward"], row["block"], row["gpt_model"]) == ("1", "1", "2", "4")
    if sid == "student_odd_names":
        notes = graded[2][sid]["notes"]
        assert any(note.endswith(".ipynb' принят как 03_feedforward (по содержимому)") for note in notes), notes


def test_edited_test_cells_cannot_forge_points(graded):
    row = graded[1]["student_edited_tests"]
    assert row["gpt_model"] == "0" and row["total"] == "6"


def test_non_utf8_student_folder_is_graded(graded):
    sid = collect.safe_id(os.fsdecode(b"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd_\xff"))
    row = graded[1][sid]
    assert row["head"] == "2" and row["total"] == "2"
    assert "missing 02_multihead_attention" in row["status"]


def test_gradebook_agrees_with_the_result_records(graded):
    out, rows, state, _, _ = graded
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for sid, entry in state.items():
            for task, result in entry["tasks"].items():
                score = gb.find_grade(TASK[task].tests_id, TASK[task].notebook, "gpt", sid).score
                assert score == result["points"], (sid, task)
            assert not entry["error"], (sid, entry["error"])


def test_worker_error_reaches_the_status_and_a_log(tmp_path):
    """A worker that fails says why in the row, and leaves its traceback in OUT/logs."""
    from autograder.classrun import grade, gradebook, outcome, pool, staging
    out = tmp_path / "out"
    course, _ = gradebook.prepare(out, "test")
    (course / "work").mkdir()
    student = collect.Student("s1", {})
    staged = staging.stage(student, course)
    work = staging.stage_work(course, "s1", gradebook.worker_template(course))
    (work / "gradebook.db").write_bytes(b"this is not a database" * 100)
    (_, record), = pool.run({"s1": work}, "secret", 10, False, course / "reference", "fp", 1)
    written = outcome.write(outcome.read_work(work, "s1"), course, out / "logs")
    result = grade.build_result("s1", student, *staged, written or record, {})
    assert "grading error" in result.status and "database" in result.status.lower(), result.status
    log = (out / "logs" / "s1.log").read_text(encoding="utf-8")
    assert "Traceback" in log or "Error" in log, log


@pytest.mark.parametrize("mode", ["single", "threaded"])
def test_the_grade_commands_workers_are_forked_from_it_unless_it_has_threads(tmp_path, mode):
    """The grade command forks its workers from itself, so no fork server imports torch and
    nbgrader again, and they grade; a process with threads (a service) cannot fork safely and
    forks none (its workers come from the fork server, as in the service's tests). The probe
    imports the command's module, so its one-BLAS-thread setting is what keeps it
    single-threaded: the test leaves it unset."""
    env = {k: v for k, v in CLEAN_ENV.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fork_probe.py"), mode, str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, env=dict(env, PYTHONPATH=str(ROOT)),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    if mode == "threaded":
        assert probe["forked"] is False and probe["children"] == {}, probe
        return
    assert probe["forked"] is True
    assert list(probe["children"].values()) == [probe["me"]], probe["children"]  # one worker, a fork of it
    record = probe["record"]
    assert not record["error"], record["error"]
    assert [t["mistakes"][0][0] for t in record["tasks"].values()] == ["not_implemented"] * 5, record["tasks"]


def test_rerun_after_a_change_to_the_checks_regrades(graded, tmp_path):
    """Results are keyed by the grader's fingerprint: a changed check re-grades everyone.

    The earlier run is the class graded above, in a copy of its OUT: a copy of the repository
    has the same fingerprint (its content) until one of its checks changes."""
    repo = tmp_path / "repo"
    for part in ("autograder", "source", "release", "data"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "nbgrader_config.py", repo)
    env = dict(CLEAN_ENV, PYTHONPATH=str(repo))
    out = tmp_path / "out"
    shutil.copytree(graded[0], out)
    earlier = json.loads((out / "state.json").read_text(encoding="utf-8"))
    key = ("from autograder.classrun import fingerprint as f; "
           "print(f.run(f.grader(), f.course()))")
    same = subprocess.run([sys.executable, "-c", key], capture_output=True, text=True, cwd=tmp_path,
                          env=env, check=True).stdout.strip()
    assert same == earlier["fingerprint"] and len(earlier["students"]) > 1
    folder = tmp_path / "class"
    shutil.copytree(graded[0].parent / "submissions" / "student_reference", folder / "student_reference")
    scoring = repo / "autograder" / "checks" / "scoring.py"
    text = scoring.read_text(encoding="utf-8")
    scoring.write_text(text.replace("все скрытые проверки пройдены.", "все скрытые проверки пройдены (v2)."),
                       encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "проверяется заново: 1" in proc.stderr and "все работы проверяются заново" in proc.stderr, proc.stderr
    page = (out / "feedback" / "student_reference" / "01_head.html").read_text(encoding="utf-8")
    assert "(v2)" in page
