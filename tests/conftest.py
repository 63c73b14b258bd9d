"""Graded classes that tests in more than one file read, and how they are built.

A session fixture is made once per test process; the files that read one carry the
same ``xdist_group`` (the root conftest.py makes every other file a group of its own),
so one process grades the class once for all of them.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile

import nbformat
import pytest

from autograder import course, demo, notebooks
from lms import CLEAN_ENV, EN, grade_command, moodle_export
from mutations import ALT_STUDENTS, ALTERNATIVES, BUG_STUDENTS, BUGS
from students import reference_bodies, write_student


@pytest.fixture(scope="session")
def moodle_class(tmp_path_factory):
    """A Moodle export graded by the command with Moodle's worksheet and a roster (group
    ``moodle-class``): Anna solved every task and handed in the whole kit folder as she ran it;
    Ivan handed in the release untouched, without 04_block (a submission problem the report
    must show), and a file that belongs to nothing (a note below the problems)."""
    base = tmp_path_factory.mktemp("moodle_class")
    export = moodle_export(base / "export", {("Anna Petrova", "1001"): True, ("Ivan Ivanov", "1002"): False})
    anna = export / "Anna Petrova_1001_assignsubmission_file_"
    for rel in course.kit_files():
        if not (anna / rel).exists():
            (anna / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(course.RELEASE / rel, anna / rel)
    (anna / "__pycache__").mkdir()
    (anna / "__pycache__" / "gpt_course.cpython-311.pyc").write_bytes(b"\0")
    (anna / ".ipynb_checkpoints").mkdir()
    shutil.copy(anna / "01_head.ipynb", anna / ".ipynb_checkpoints" / "01_head-checkpoint.ipynb")
    (export / "Ivan Ivanov_1002_assignsubmission_file_" / "04_block.ipynb").unlink()
    (export / "Ivan Ivanov_1002_assignsubmission_file_" / "my_model.py").write_text("class GPT: pass\n")
    sheet = base / "worksheet.csv"
    sheet.write_bytes(EN.encode("utf-8"))
    roster = base / "roster.csv"
    roster.write_text("student_id,email\n1002,ivan@example.org\n", encoding="utf-8")
    out = base / "out"
    done = grade_command(export, "--out", out, "--moodle-worksheet", sheet, "--roster", roster)
    return types.SimpleNamespace(out=out, done=done)


def _edit(folder, name, change):
    path = folder / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    change(nb)
    nbformat.write(nb, str(path))


def _code(source):
    return nbformat.v4.new_code_cell(source)


def _add_robustness_students(folder):
    """One student per kind of damaged submission; all copies of the reference."""
    ref = folder / "student_reference"

    def student(sid):
        shutil.copytree(ref, folder / sid)
        return folder / sid

    v3 = student("student_nbformat3")
    nb = nbformat.read(str(v3 / "01_head.ipynb"), as_version=4)
    (v3 / "01_head.ipynb").write_text(nbformat.writes(nbformat.convert(nb, 3)))

    deleted = student("student_deleted_cells")
    _edit(deleted, "01_head", lambda nb: nb.cells.__setitem__(
        slice(None), [c for c in nb.cells if notebooks.grade_id(c) != "head_tests" and c.cell_type == "code"]))

    def reorder(nb):
        tests = notebooks.find_cell(nb, "feedforward_tests")
        nb.cells.remove(tests)
        nb.cells.insert(2, tests)
    _edit(student("student_reordered_cells"), "03_feedforward", reorder)

    def duplicate(nb):
        cell = notebooks.find_cell(nb, "block_solution")
        nb.cells.insert(nb.cells.index(cell), nbformat.from_dict(json.loads(json.dumps(cell))))
    _edit(student("student_duplicated_cells"), "04_block", duplicate)

    def forge_tests(nb):
        notebooks.find_cell(nb, "gpt_model_tests").source = "print('всё верно')"
        notebooks.find_cell(nb, "gpt_model_solution").source += "\n\nGPTModel.forward = lambda self, idx, targets=None: (None, None)"
    _edit(student("student_edited_tests"), "05_gpt_model", forge_tests)

    def rename(nb):
        notebooks.find_cell(nb, "head_solution").metadata["nbgrader"]["grade_id"] = "my_head"
    _edit(student("student_renamed_solution"), "01_head", rename)

    _edit(student("student_output_flood"), "03_feedforward",
          lambda nb: nb.cells.append(_code("for i in range(200000):\n    print('x' * 100)")))
    _edit(student("student_endless_loop"), "02_multihead_attention",
          lambda nb: nb.cells.append(_code("import time\nwhile True:\n    time.sleep(0.05)")))  # spinning: test_sandbox.py
    _edit(student("student_kernel_dies"), "04_block",
          lambda nb: nb.cells.append(_code("import os\nos._exit(1)")))

    def head_kills_kernel(nb):  # and so every later step that imports it
        notebooks.find_cell(nb, "head_solution").source += "\n\nimport os\nos._exit(1)"
    _edit(student("student_head_kills_kernel"), "01_head", head_kills_kernel)

    big = student("student_huge_file")
    nb = nbformat.read(str(big / "02_multihead_attention.ipynb"), as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="x" * (110 * 2**20))]
    nb.cells[0].cell_type = "code"
    (big / "02_multihead_attention.ipynb").write_text(json.dumps(nb))

    odd = student("student_odd_names")
    (odd / "03_feedforward.ipynb").rename(os.fsdecode(os.path.join(os.fsencode(odd), b"\xff\xfe.ipynb")))
    os.mkdir(os.path.join(os.fsencode(folder), b"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd_\xff"))
    shutil.copy(ref / "01_head.ipynb", os.path.join(os.fsencode(folder), b"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd_\xff", b"01_head.ipynb"))


def _add_mutation_sample(folder):
    """The end-to-end sample of tests/mutations.py: reference bodies, one bug or alternative per task."""
    references = reference_bodies()
    for students, table in ((BUG_STUDENTS, BUGS), (ALT_STUDENTS, ALTERNATIVES)):
        for sid, keys in students.items():
            write_student(folder / sid, dict(references, **{task: table[key][1] for task, key in keys.items()}))


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """The demo class, damaged submissions and the mutation sample, graded sandboxed by the command
    as a newcomer runs it (group ``graded-class``: tests/test_grader.py, test_grader_mutations.py).

    Returns (OUT, grades.csv rows by id, result records by id, stdout, a flat LMS zip of the class).
    """
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
    _add_robustness_students(folder)
    # A zip of flat LMS names (the demo and damaged submissions).
    archive = base / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for sub in sorted(p for p in folder.iterdir() if p.name.isascii()):
            for nb in sorted(sub.glob("0*.ipynb")):
                zf.write(nb, f"{sub.name.replace('student_', 'ivanov_ivan_')}_{nb.name}")
    _add_mutation_sample(folder)
    out = base / "out"
    # The venv's python as a newcomer calls it: not activated, a bare PATH, another folder.
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out),
                           "--cell-timeout", "15"],
                          capture_output=True, text=True, cwd=base, timeout=1200, env=CLEAN_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))["students"]
    return out, rows, state, proc.stdout, archive
