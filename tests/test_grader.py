"""End to end: the real command grades a small class of real notebooks."""
import csv
import json
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import demo

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    folder = demo.build_class(base / "submissions")
    # Bad submissions beside the honest ones.
    broken = folder / "student_broken"
    shutil.copytree(folder / "student_reference", broken)
    (broken / "01_head.ipynb").write_text("this is not json")
    text = (broken / "02_multihead_attention.ipynb").read_text()
    (broken / "02_multihead_attention.ipynb").write_text(text[: len(text) // 2])
    (broken / "03_feedforward.ipynb").unlink()
    (broken / "notes.txt").write_text("extra file")
    renamed = folder / "student_renamed"
    shutil.copytree(folder / "student_reference", renamed)
    (renamed / "04_block.ipynb").rename(renamed / "04_Block (1).ipynb")
    # A zip of flat LMS names.
    archive = base / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for sub in sorted(folder.iterdir()):
            for nb in sorted(sub.glob("*")):
                zf.write(nb, f"{sub.name.replace('student_', 'ivanov_ivan_')}_{nb.name}")
    out = base / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))
    return out, rows, state, proc.stdout, archive


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
    assert key in [m[0] for m in state[sid]["verdicts"][task]["mistakes"]]
    page = (out / "feedback" / sid / f"{demo.NOTEBOOK_OF_TASK[task]}.html").read_text(encoding="utf-8")
    assert state[sid]["verdicts"][task]["mistakes"][0][1].split(":")[0] in page


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
    assert "invalid notebook 02_multihead_attention" in row["status"]
    assert "missing 03_feedforward" in row["status"]
    assert (row["head"], row["multihead"], row["feedforward"]) == ("0", "0", "0")
    assert (row["block"], row["gpt_model"]) == ("2", "4")
    assert rows["student_renamed"]["total"] == "10"


def test_report_has_charts(graded):
    out = graded[0]
    assert (out / "report.html").stat().st_size > 10_000
    for name in ("grades.png", "tasks.png", "mistakes.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


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
    from autograder import collect
    archive = graded[4]
    folder = collect.extract(archive, archive.parent / "flat")
    students = collect.collect(folder)
    assert "reference" in students and len(students["reference"].notebooks) == 7
