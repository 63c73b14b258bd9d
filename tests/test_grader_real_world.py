"""End to end: notebooks as students really save them (and a folder zipped and handed in as it
is, and students in Canvas's and Moodle's flat names), graded by the real command from a zip."""
import csv
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder import demo
from autograder.course import GRADED_NOTEBOOKS, NOTEBOOKS, RELEASE, TASKS, TOTAL_POINTS

ROOT = pathlib.Path(__file__).resolve().parents[1]
FULL = {spec.key: str(spec.points) for spec in TASKS}


def _recreate(src, dst, metadata, cell_metadata):
    """Every notebook's cells copied into new notebooks (no nbgrader metadata, no tags)."""
    dst.mkdir()
    for name in NOTEBOOKS:
        nb = nbformat.read(str(src / f"{name}.ipynb"), as_version=4)
        new = nbformat.v4.new_notebook(metadata=dict(metadata))
        for cell in nb.cells:
            make = nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
            new.cells.append(make(cell.source, metadata=dict(cell_metadata)))
        nbformat.write(new, str(dst / f"{name}.ipynb"))


def _colab(src, dst):
    _recreate(src, dst, {"colab": {"provenance": []},
                         "kernelspec": {"name": "python3", "display_name": "Python 3"}}, {})


def _vscode(src, dst):
    _recreate(src, dst, {"language_info": {"name": "python"}, "vscode": {"interpreter": {"hash": "0a1b"}},
                         "kernelspec": {"name": "python3", "display_name": ".venv"}},
              {"vscode": {"languageId": "python"}})


def _bom_crlf(src, dst):
    dst.mkdir()
    for name in NOTEBOOKS:
        text = (src / f"{name}.ipynb").read_text(encoding="utf-8").replace("\n", "\r\n")
        (dst / f"{name}.ipynb").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


def _resaved(src, dst, encoding):
    """Every notebook re-saved by a Windows editor: Notepad's «Юникод» (UTF-16, CRLF), or the
    Russian code page (cp1251: the few characters it lacks become «?»)."""
    dst.mkdir()
    for name in NOTEBOOKS:
        text = (src / f"{name}.ipynb").read_text(encoding="utf-8").replace("\n", "\r\n")
        (dst / f"{name}.ipynb").write_bytes(text.encode(encoding, "replace"))


def _old_tail(src, dst):
    """01_head saved over a longer earlier save without cutting the file (a sync tool, a network
    drive): the new save, then the old one's tail (Jupyter refuses it: «Extra data»)."""
    shutil.copytree(src, dst)
    path = dst / "01_head.ipynb"
    new = path.read_bytes()
    nb = nbformat.reads(new.decode("utf-8"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('черновик')\n" * 40))
    old = nbformat.writes(nb).encode("utf-8")
    assert len(old) > len(new)
    path.write_bytes(new + old[len(new):])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("real_world")
    built = demo.build_class(base / "built")
    folder = base / "submissions"
    folder.mkdir()
    shutil.copytree(built / "student_reference", folder / "student_reference")
    _colab(built / "student_reference", folder / "student_colab")
    _vscode(built / "student_reference", folder / "student_vscode")
    _bom_crlf(built / "student_reference", folder / "student_bom_crlf")
    _resaved(built / "student_reference", folder / "student_utf16", "utf-16")
    _resaved(built / "student_reference", folder / "student_cp1251", "cp1251")
    _old_tail(built / "student_reference", folder / "student_old_tail")
    copied = folder / "student_worked_in_copy"   # Jupyter's «Make a Copy» solved, the original untouched beside it
    shutil.copytree(built / "student_reference", copied)
    (copied / "01_head.ipynb").rename(copied / "01_head-Copy1.ipynb")
    shutil.copy(RELEASE / "01_head.ipynb", copied / "01_head.ipynb")
    shutil.copytree(built / "student_reference", folder / "student_cut_short")   # 01_head's save interrupted
    path = folder / "student_cut_short" / "01_head.ipynb"
    raw = path.read_bytes()
    path.write_bytes(raw[:raw.index(b'"cell_type"', raw.index(b'"head_tests"')) + 5])
    _colab(built / "student_no_scale", folder / "student_colab_no_scale")   # a wrong Head, re-created
    _colab(built / "student_reference", folder / "student_colab_syntax_error")
    path = folder / "student_colab_syntax_error" / "01_head.ipynb"
    text = path.read_text(encoding="utf-8")
    assert text.count("def forward(self, x):") == 1
    path.write_text(text.replace("def forward(self, x):", "def forward(self, x)"), encoding="utf-8")
    own = folder / "student_own_module"    # the class kept in a file of the student's own, imported
    shutil.copytree(built / "student_reference", own)
    nb = nbformat.read(str(own / "01_head.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "head_solution")
    (own / "my_model.py").write_text("import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F\n\n"
                                     + cell.source, encoding="utf-8")
    cell.source = "from my_model import Head"
    nbformat.write(nb, str(own / "01_head.ipynb"))
    renamed = folder / "student_renamed_hw"       # 02 saved as «ДЗ часть 2.ipynb»
    shutil.copytree(built / "student_reference", renamed)
    (renamed / "02_multihead_attention.ipynb").rename(renamed / "ДЗ часть 2.ipynb")
    zipped = folder / "student_zipped"     # the folder zipped on a Mac and uploaded as it is
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "gpt.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((built / "student_reference").glob("*.ipynb")):
            zf.write(path, f"gpt/{path.name}")
            zf.writestr(f"__MACOSX/gpt/._{path.name}", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X" + bytes(40))
    archive = base / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.suffix in (".ipynb", ".zip", ".py")):
            zf.write(path, path.relative_to(folder).as_posix())
        for number, path in enumerate(sorted((built / "student_reference").glob("*.ipynb"))):   # Canvas's names
            late = "late_" if number % 2 else ""
            zf.write(path, f"orlovboris_{late}555_{9000 + number}_{path.stem}{'-1' if number == 1 else ''}.ipynb")
            zf.write(path, f"Пётр Сидоров_777_assignsubmission_file_{path.name}")      # Moodle's without folders
    out = base / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PATH=os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(archive), "--out", str(out),
                           "--cell-timeout", "30"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "grades.csv", encoding="utf-8") as f:
        return out, {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
@pytest.mark.parametrize("sid", ["student_reference", "student_colab", "student_vscode", "student_bom_crlf",
                                 "student_utf16", "student_cp1251", "student_zipped", "555", "777",
                                 "student_renamed_hw", "student_old_tail", "student_cut_short",
                                 "student_worked_in_copy"])
def test_saved_as_students_do_gets_full_points(graded, sid):
    row = graded[1][sid]
    assert {t: row[t] for t in FULL} == FULL and row["total"] == str(TOTAL_POINTS), row


@pytest.mark.slow
@pytest.mark.parametrize("sid", ["student_colab", "student_vscode"])
def test_recreated_notebooks_name_their_repair(graded, sid):
    status = graded[1][sid]["status"]
    for name in GRADED_NOTEBOOKS:
        assert f"repaired {name}: nbgrader metadata restored by content (2 cells)" in status, status
    assert "repaired 00_data: export tags restored" in status, status
    assert "grading error" not in status and "invalid" not in status


@pytest.mark.slow
@pytest.mark.parametrize("sid, encoding", [("student_utf16", "UTF-16"), ("student_cp1251", "cp1251")])
def test_notebooks_resaved_in_another_encoding_are_graded_and_the_encoding_named(graded, sid, encoding):
    status = graded[1][sid]["status"]
    for name in NOTEBOOKS:
        assert f"repaired {name}: text in {encoding} read as such (Jupyter saves UTF-8)" in status, status
    assert "invalid" not in status and "grading error" not in status, status


@pytest.mark.slow
def test_an_old_saves_tail_is_dropped_and_named(graded):
    status = graded[1]["student_old_tail"]["status"]
    assert re.fullmatch(r"repaired 01_head: \d+ characters after the notebook's end ignored \(an old save's tail\)",
                        status), status


@pytest.mark.slow
def test_a_file_cut_short_is_graded_from_its_whole_cells_and_named(graded):
    status = graded[1]["student_cut_short"]["status"]
    assert re.match(r"repaired 01_head: file cut short or damaged: its first \d+ whole cells read", status), status


@pytest.mark.slow
@pytest.mark.parametrize("sid", ["student_reference", "student_bom_crlf", "student_zipped"])
def test_intact_notebooks_need_no_repair(graded, sid):
    assert graded[1][sid]["status"] == "ok", graded[1][sid]


@pytest.mark.slow
def test_recreated_wrong_head_gets_its_true_grade(graded):
    out, rows = graded
    row = rows["student_colab_no_scale"]
    assert float(row["head"]) < float(FULL["head"]), row
    assert {t: row[t] for t in FULL if t != "head"} == {t: p for t, p in FULL.items() if t != "head"}, row
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))["students"]
    assert "no_scale" in [key for key, _ in state["student_colab_no_scale"]["tasks"]["head"]["mistakes"]]
    assert (out / "feedback" / "student_colab_no_scale" / "01_head.html").is_file()


def _mistakes(out, sid, task):
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))["students"]
    return state[sid]["tasks"][task]["mistakes"]


@pytest.mark.slow
def test_a_solution_cell_that_fails_is_named_by_its_error(graded):
    """The class imported from the student's own file (which the grader does not take): 0 for the
    task, named by the cell's error in Russian, not «класс не найден: не переименовывайте его»."""
    out, rows = graded
    assert rows["student_own_module"]["head"] == "0" and rows["student_own_module"]["total"] == str(
        TOTAL_POINTS - 2), rows["student_own_module"]
    (key, text), = _mistakes(out, "student_own_module", "head")
    assert key == "solution_failed" and text.startswith("ячейка с классом не выполнилась, поэтому класса нет: "
                                                        "нет модуля «my_model»: если это ваш файл my_model.py"), text
    assert "строка 1: from my_model import Head" in text
    page = (out / "feedback" / "student_own_module" / "01_head.html").read_text(encoding="utf-8")
    assert "перенесите его код в ноутбук" in page


@pytest.mark.slow
def test_recreated_head_with_a_syntax_error_is_graded_as_wrong_not_lost(graded):
    row = graded[1]["student_colab_syntax_error"]
    assert row["head"] == "0", row
    (key, text), = _mistakes(graded[0], "student_colab_syntax_error", "head")
    assert key == "solution_failed" and "Синтаксическая ошибка" in text and "пропущено двоеточие" in text, text
    assert {t: row[t] for t in FULL if t != "head"} == {t: p for t, p in FULL.items() if t != "head"}, row
    assert "repaired 01_head: nbgrader metadata restored by content (2 cells)" in row["status"], row
    assert "grading error" not in row["status"], row
