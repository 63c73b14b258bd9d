"""Reading and editing course notebooks: solution bodies, stub regions, hidden parts.

Any side may use it: nbformat and the standard library only.
"""
import re
import textwrap

import nbformat

from .course import HIDDEN_BEGIN, SOLUTION_BEGIN, SOLUTION_END, STUB_BEGIN, STUB_END, TASK

_REGION = re.compile(rf"^([ \t]*){SOLUTION_BEGIN}\n(.*?)^[ \t]*{SOLUTION_END}(?:\n|\Z)", re.S | re.M)
_STUB = re.compile(rf"^([ \t]*){STUB_BEGIN}\n.*?^[ \t]*{STUB_END}(?:\n|\Z)", re.S | re.M)
# An image inline in a cell's text (Colab keeps images pasted into text cells so)
_DATA_URL = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def find_cell(nb, wanted):
    for cell in nb.cells:
        if grade_id(cell) == wanted:
            return cell
    raise KeyError(f"no cell {wanted!r}")


def text_size(source):
    """The characters of a cell's source that are code or text: inline images do not count."""
    return len(_DATA_URL.sub("", source)) if "data:" in source else len(source)


def visible_part(source):
    """A test cell's source without its hidden tests."""
    return source.split(HIDDEN_BEGIN, 1)[0].rstrip()


def solution_body(source_nb, task):
    """The reference body of ``task`` in an instructor notebook, dedented."""
    cell = find_cell(source_nb, TASK[task].solution_id)
    match = _REGION.search(cell.source)
    return textwrap.dedent(match.group(2))


def paste_body(nb, task, body):
    """Replace the stub region of ``task`` in a release notebook with ``body``."""
    cell = find_cell(nb, TASK[task].solution_id)
    match = _STUB.search(cell.source)
    if match is None:
        raise ValueError(f"no stub region in {task}")
    indent = match.group(1)
    text = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", indent,
                           lambda line: True)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    cell.source = cell.source[: match.start()] + text + cell.source[match.end():]
    return nb


def read(path):
    return nbformat.read(str(path), as_version=4)
