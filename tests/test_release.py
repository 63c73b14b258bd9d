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
from autograder.course import TASK_OF_GRADE_ID, TASKS

NOTEBOOK_OF_TASK = {spec.key: spec.notebook for spec in TASKS}

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / "release" / "gpt"
SOURCE = ROOT / "source" / "gpt"
STUB = [
    "# НАЧАЛО ВАШЕГО РЕШЕНИЯ",
    "raise NotImplementedError() # удалить эту строку в процессе решения",
    "# КОНЕЦ ВАШЕГО РЕШЕНИЯ",
]
TRAILING = {"head": "return out", "multihead": "return out", "feedforward": None,
            "block": "return x", "gpt_model": "return logits, loss"}


def test_release_regenerates_identically(tmp_path):
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt", "--force",
                    "--CourseDirectory.root=" + str(tmp_path)],
                   cwd=tmp_path, check=True, capture_output=True)
    fresh = tmp_path / "release" / "gpt"
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in RELEASE.iterdir())
    for path in fresh.iterdir():
        assert path.read_bytes() == (RELEASE / path.name).read_bytes(), \
            f"release/gpt/{path.name} is stale: run `make release`"


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
        expected = TRAILING[task]
        assert (rest[0].startswith(expected) if expected else not rest or rest[0].startswith("def ")), task


def _run(folder, name):
    nb = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def _errors(nb):
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append((notebooks.grade_id(cell), out.ename))
    return found


@pytest.fixture(scope="module")
def release_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("release") / "gpt"
    shutil.copytree(RELEASE, folder)
    return folder


@pytest.mark.parametrize("task", list(NOTEBOOK_OF_TASK))
def test_release_notebook_fails_its_tests_with_not_implemented_only(release_copy, task):
    nb = _run(release_copy, NOTEBOOK_OF_TASK[task])
    assert _errors(nb) == [(task + "_tests", "NotImplementedError")]


def test_release_with_reference_bodies_passes_visible_and_hidden_tests(tmp_path):
    folder = tmp_path / "gpt"
    shutil.copytree(RELEASE, folder)
    for task, name in NOTEBOOK_OF_TASK.items():
        source_nb = notebooks.read(SOURCE / f"{name}.ipynb")
        nb = notebooks.read(folder / f"{name}.ipynb")
        notebooks.paste_body(nb, task, notebooks.solution_body(source_nb, task))
        # Put the hidden tests back, as nbgrader's autograde does.
        notebooks.find_cell(nb, task + "_tests").source = \
            notebooks.find_cell(source_nb, task + "_tests").source
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    for name in notebooks.NOTEBOOKS:
        nb = _run(folder, name)
        assert _errors(nb) == [], name
        if name in NOTEBOOK_OF_TASK.values():
            text = json.dumps(nb.cells[-1].get("outputs", []) + [o for c in nb.cells for o in c.get("outputs", [])],
                              ensure_ascii=False)
            assert "все скрытые проверки пройдены" in text, name
