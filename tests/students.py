"""Student-like submissions for the tests: reference bodies, pasted bodies, classes in-process.

``write_student`` makes a folder of the seven release notebooks with the given
forward bodies pasted between the stub markers; ``class_namespace`` runs one
task's class cell in-process (with the reference classes for the others), as
the notebook's kernel would.
"""
import math

import nbformat
import torch
import torch.nn as nn
from torch.nn import functional as F

from autograder import notebooks
from autograder.checks import reference
from autograder.course import NOTEBOOKS, RELEASE, SOURCE, TASK, TASKS


def reference_bodies():
    return {spec.key: notebooks.solution_body(notebooks.read(SOURCE / f"{spec.notebook}.ipynb"), spec.key)
            for spec in TASKS}


def write_student(folder, bodies):
    """The release notebooks with ``bodies`` ({task: body}) pasted in."""
    folder.mkdir(parents=True)
    for name in NOTEBOOKS:
        nb = notebooks.read(RELEASE / f"{name}.ipynb")
        for spec in TASKS:
            if spec.notebook == name and spec.key in bodies:
                notebooks.paste_body(nb, spec.key, bodies[spec.key])
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


_CELLS = {}


def class_namespace(task, body):
    """A namespace in which ``task``'s class has ``body`` as forward (others: the reference)."""
    if task not in _CELLS:
        nb = notebooks.read(RELEASE / f"{TASK[task].notebook}.ipynb")
        _CELLS[task] = notebooks.find_cell(nb, TASK[task].solution_id)
    cell = nbformat.from_dict(dict(_CELLS[task]))
    holder = nbformat.v4.new_notebook(cells=[cell])
    notebooks.paste_body(holder, task, body)
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math, **reference.CLASSES}
    exec(compile(holder.cells[0].source, f"<{TASK[task].notebook}>", "exec"), namespace)
    return namespace
