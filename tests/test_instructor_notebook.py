"""notebooks/instructor_demo.ipynb: an instructor's view of a graded class, run by a real kernel.

The notebook grades the demo class when its OUT holds no results; here it is given
the OUT of the Moodle class that tests/conftest.py grades once (group ``moodle-class``),
so it only reads and shows: the table, the charts, each student's named mistakes.
"""
import json
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from kit import ROOT, kernel_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("moodle-class")]  # reads conftest.py's Moodle class
NOTEBOOK = ROOT / "notebooks" / "instructor_demo.ipynb"


def test_the_instructor_notebook_shows_a_graded_class(moodle_class, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(moodle_class.out, out)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    env = kernel_env(GPT_DEMO_OUT=str(out))
    env.pop("MPLBACKEND")   # the kernel's inline backend: the charts become outputs
    NotebookClient(nb, timeout=300, kernel_name="python3", shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(
        env=env)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    assert "Результаты уже есть" in outputs            # nothing graded again
    assert "<td>1001</td>" in outputs and "<td>1002</td>" in outputs
    assert "image/png" in outputs
    assert "1001: 10 из 10" in outputs and "1002: 0 из 10" in outputs
    assert "forward не реализован" in outputs            # Ivan's untouched release, named
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]


def test_notebooks_hold_one_copy_of_each_ungraded_notebook():
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == ["attention_basics.ipynb",
                                                                             "instructor_demo.ipynb"]
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert not list((ROOT / "source").rglob(path.name)), path.name
        nb = nbformat.read(str(path), as_version=4)
        assert not [c for c in nb.cells if c.get("outputs")], f"{path.name} is committed without outputs"
    assert not (ROOT / "release" / "gpt" / "instructor_demo.ipynb").exists()
