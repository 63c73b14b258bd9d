"""Build release/gpt: nbgrader's student version of source/gpt, plus the course's lessons.

    python tools/release.py            # what `make release` runs

``nbgrader generate_assignment`` turns the seven instructor notebooks of
``source/gpt`` (and the files beside them) into ``release/gpt``. The ungraded
notebooks students get live once, in ``notebooks/``; those named in ``LESSONS``
are copied into the release, without outputs.
"""
import os
import pathlib
import subprocess
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = ("attention_basics.ipynb",)   # notebooks/ files that go to students


def copy_lessons(root=ROOT):
    """Copy the lessons of ``root/notebooks`` into ``root/release/gpt`` (outputs cleared)."""
    for name in LESSONS:
        nb = nbformat.read(str(pathlib.Path(root) / "notebooks" / name), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, str(pathlib.Path(root) / "release" / "gpt" / name))


def generate(root=ROOT):
    """nbgrader's release of ``root/source/gpt`` into ``root/release/gpt``, then the lessons."""
    bin_dir = os.path.dirname(sys.executable)   # nbgrader's gradebook runs `alembic` by name
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "gpt", "--force",
                    f"--CourseDirectory.root={root}"], cwd=root, env=env, check=True)
    copy_lessons(root)


if __name__ == "__main__":
    generate()
