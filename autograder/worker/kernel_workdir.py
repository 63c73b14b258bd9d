"""The folder a student's kernel runs in: copies of the student's files, never nbgrader's.

RUNS IN A GRADING WORKER. The kernel never sees the folder nbgrader writes the autograded
notebooks (hidden test cells restored) into. A new kernel starts in a clean folder; a
kernel kept from the last notebook is still running while the next notebook's files are
copied in, so names there are reached through the folder's descriptor, never followed,
never overwritten (``kernel_folders``).
"""
import os
import pathlib

from . import kernel_folders


def prepare(notebook_dir, kernel_dir="", siblings="", fresh=True):
    """The kernel's folder for a notebook in ``notebook_dir``: ``kernel_dir`` (emptied first when
    ``fresh``) with the notebook's course files, or the notebook's own folder; the student's
    other notebooks from ``siblings`` go in too (later steps import them)."""
    notebook_dir = pathlib.Path(notebook_dir)
    workdir, copies = notebook_dir, []
    if kernel_dir:
        workdir = pathlib.Path(os.path.realpath(kernel_dir))
        if fresh:  # nothing left by a kernel that was killed
            kernel_folders.remove(workdir, settled=True)
        workdir.mkdir(parents=True, exist_ok=True)
        copies += [path for path in notebook_dir.iterdir() if path.suffix != ".ipynb"]
    if siblings:
        copies += sorted(pathlib.Path(siblings).glob("*.ipynb"))
    if copies:
        with kernel_folders.folder(workdir) as fd:
            for path in copies:
                kernel_folders.copy_in(path, fd, path.name)
    return workdir
