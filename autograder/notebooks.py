"""Reading and editing course notebooks: solution bodies and stub regions."""
import re
import textwrap

import nbformat

STUB_BEGIN = "# НАЧАЛО ВАШЕГО РЕШЕНИЯ"
STUB_END = "# КОНЕЦ ВАШЕГО РЕШЕНИЯ"
_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION(?:\n|\Z)", re.S | re.M)
_STUB = re.compile(rf"^([ \t]*){STUB_BEGIN}\n.*?^[ \t]*{STUB_END}(?:\n|\Z)", re.S | re.M)
TASK_OF_GRADE_ID = {
    "head_solution": "head", "multihead_solution": "multihead",
    "feedforward_solution": "feedforward", "block_solution": "block",
    "gpt_model_solution": "gpt_model",
}
NOTEBOOK_OF_TASK = {
    "head": "01_head", "multihead": "02_multihead_attention", "feedforward": "03_feedforward",
    "block": "04_block", "gpt_model": "05_gpt_model",
}
NOTEBOOKS = ("00_data", "01_head", "02_multihead_attention", "03_feedforward",
             "04_block", "05_gpt_model", "06_training")


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def find_cell(nb, wanted):
    for cell in nb.cells:
        if grade_id(cell) == wanted:
            return cell
    raise KeyError(f"no cell {wanted!r}")


def solution_body(source_nb, task):
    """The reference body of ``task`` in an instructor notebook, dedented."""
    cell = find_cell(source_nb, task + "_solution")
    match = _REGION.search(cell.source)
    return textwrap.dedent(match.group(2))


def paste_body(nb, task, body):
    """Replace the stub region of ``task`` in a release notebook with ``body``."""
    cell = find_cell(nb, task + "_solution")
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
