"""Student-like submissions for the tests: reference bodies, pasted bodies, classes in-process.

``write_student`` makes a folder of the seven release notebooks with the given
forward bodies pasted between the stub markers; ``class_namespace`` runs one
task's class cell in-process (with the reference classes for the others), as
the notebook's kernel would.
"""
import linecache
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


def class_namespace(task, body):
    """The namespace a notebook has after running ``task``'s class cell with ``body`` pasted in.

    The classes it builds come from the reference; the cell's lines are
    registered with linecache, as IPython does, so tracebacks can quote them.
    """
    nb = notebooks.read(RELEASE / f"{TASK[task].notebook}.ipynb")
    notebooks.paste_body(nb, task, body)
    source = notebooks.find_cell(nb, TASK[task].solution_id).source
    filename = f"<{task} solution cell>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math, "__name__": "student"}
    namespace.update({dep: reference.CLASSES[dep] for dep in TASK[task].depends_on})
    exec(compile(source, filename, "exec"), namespace)
    return namespace
