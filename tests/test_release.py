"""release/ is nbgrader's output of source/, and its stubs behave as promised."""
import json
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import notebooks
from autograder.course import TASK, TASK_OF_GRADE_ID, TASKS

NOTEBOOK_OF_TASK = {spec.key: spec.notebook for spec in TASKS}

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "gpt"
SOURCE = ROOT / "source" / "gpt"
STUB = [
    "# НАЧАЛО ВАШЕГО РЕШЕНИЯ",
    "raise NotImplementedError() # удалить эту строку в процессе решения",
    "# КОНЕЦ ВАШЕГО РЕШЕНИЯ",
]
KIT = ["00_data.ipynb", "01_head.ipynb", "02_multihead_attention.ipynb", "03_feedforward.ipynb",
       "04_block.ipynb", "05_gpt_model.ipynb", "06_training.ipynb", "README.md",
       "attention_basics.ipynb", "block.png", "data/input.txt", "gpt_course.py", "gpt_errors.py",
       "gpt_harness.py", "gpt_messages.py", "gpt_plots.py", "gpt_selfcheck.py", "gpt_submit.py", "gpt_tasks.py"]
sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_release_regenerates_identically(tmp_path):
    """`make release` (tools/release.py: nbgrader, then the lessons of notebooks/) makes release/gpt."""
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    done = subprocess.run([sys.executable, "-c", f"import release; release.generate({str(tmp_path)!r})"],
                          cwd=ROOT / "tools", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = tmp_path / "release" / "gpt"
    assert _files(fresh) == _files(RELEASE)
    for name in _files(fresh):
        assert (fresh / name).read_bytes() == (RELEASE / name).read_bytes(), \
            f"release/gpt/{name} is stale: run `make release`"


def test_release_is_the_whole_student_kit():
    assert _files(RELEASE) == sorted(KIT)
    # the ungraded notebooks students get are authored once, in notebooks/
    assert not (SOURCE / "attention_basics.ipynb").exists()
    for name in release.LESSONS:
        assert (ROOT / "notebooks" / name).is_file() and (RELEASE / name).is_file()
    assert (RELEASE / "data" / "input.txt").read_bytes() == (SOURCE / "data" / "input.txt").read_bytes()
    readme = (RELEASE / "README.md").read_text(encoding="utf-8")
    for must in ("Colab", "Ctrl+S", "max_iters", "python gpt_selfcheck.py", "семь"):
        assert must in readme, must


def test_release_cells_carry_no_test_machinery_or_repository_paths():
    for path in sorted(RELEASE.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            assert "NBVAL" not in cell.source, path.name
            assert "notebooks/" not in cell.source, path.name
            assert not cell.get("outputs"), path.name


def test_task_header_only_where_there_are_tasks_and_a_self_check_after_the_tests():
    for path in sorted(RELEASE.glob("0*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        task = {v: k for k, v in NOTEBOOK_OF_TASK.items()}.get(path.stem)
        assert nb.cells[0].source.startswith(f"# **Важно!**\n\nЭто шаг {path.stem[:2]} "), path.name
        assert ("КАЖДОЙ" in nb.cells[0].source) == bool(task), path.name
        assert "Вопросы для размышления" in nb.cells[-1].source, path.name
        if task:
            code = [c for c in nb.cells if c.cell_type == "code"]
            tests = next(i for i, c in enumerate(code) if notebooks.grade_id(c) == f"{task}_tests")
            assert code[tests + 1].source == f'from gpt_course import selfcheck\n\nselfcheck("{task}", globals())'


def test_release_has_the_seed_stub_in_exactly_five_regions():
    regions = []
    points = 0
    for path in sorted(RELEASE.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            points += meta.get("points", 0) if meta.get("grade") else 0
            assert "HIDDEN TESTS" not in cell.source and "autograder" not in cell.source
            assert "BEGIN SOLUTION" not in cell.source
            lines = cell.source.split("\n")
            for i, line in enumerate(lines):
                if line.strip() == STUB[0]:
                    indent = line[: len(line) - len(line.lstrip())]
                    assert lines[i: i + 3] == [indent + s for s in STUB], path.name
                    regions.append((TASK_OF_GRADE_ID[meta["grade_id"]].key, lines[i + 3:]))
    assert len(regions) == 5
    assert points == 10
    for task, after in regions:
        rest = [l.strip() for l in after if l.strip()]
        expected = TASK[task].returns
        assert (rest[0].startswith(expected) if expected else not rest or rest[0].startswith("def ")), task


def _run(folder, name):
    nb = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3", shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def _errors(nb):
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append((notebooks.grade_id(cell), out.ename))
    return found


# Solved notebooks are run elsewhere: nbval runs source/ (solutions and hidden tests),
# test_student_kit.py the unpacked kit with the reference bodies pasted in.
@pytest.mark.slow
def test_each_release_task_fails_its_tests_with_not_implemented_only(tmp_path):
    """Earlier steps solved, this one untouched: only its own test cell fails."""
    folder = tmp_path / "gpt"
    shutil.copytree(RELEASE, folder)
    for task, name in NOTEBOOK_OF_TASK.items():
        nb = _run(folder, name)
        found = _errors(nb)
        assert found[0] == (task + "_tests", "NotImplementedError"), name
        # only cells after the tests that use the class fail too (the pictures), never a graded one
        assert all(grade_id is None and ename == "NotImplementedError" for grade_id, ename in found[1:]), found
        check = next(c for c in nb.cells if c.source.startswith("from gpt_course import selfcheck"))
        assert "forward не реализован" in json.dumps(check.outputs, ensure_ascii=False), name
        solved = notebooks.read(folder / f"{name}.ipynb")
        body = notebooks.solution_body(notebooks.read(SOURCE / f"{name}.ipynb"), task)
        nbformat.write(notebooks.paste_body(solved, task, body), str(folder / f"{name}.ipynb"))
