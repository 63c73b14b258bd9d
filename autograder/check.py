"""``make check``: a student's self-check of the visible tests, per task."""
import os
import pathlib

import nbformat
from nbclient import NotebookClient

from .course import TASK, TASK_KEYS
from .notebooks import grade_id, visible_part

TASK_NAMES = {key: TASK[key].cls for key in TASK_KEYS}
TASK_OF_TESTS = {TASK[key].tests_id: key for key in TASK_KEYS}


def check_notebook(path, timeout=300):
    """[(task, None or the Russian hint)] for the test cells of one notebook."""
    path = pathlib.Path(path)
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:                      # never needs the hidden tests
        cell.source = visible_part(cell.source) if cell.cell_type == "code" else cell.source
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    results = []
    for cell in nb.cells:
        task = TASK_OF_TESTS.get(grade_id(cell))
        if task is None:
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        results.append((task, f"{errors[0].ename}: {errors[0].evalue}" if errors else None))
    return results


def main(paths):
    # Kernels find gpt_course.py and the data even outside the course folder.
    release = pathlib.Path(__file__).resolve().parents[1] / "release" / "gpt"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(release)]))
    failed = 0
    for path in paths:
        for task, hint in check_notebook(path):
            mark = "пройдено" if hint is None else f"НЕ пройдено — {hint}"
            print(f"{pathlib.Path(path).name:32} {TASK_NAMES[task]:20} {mark}")
            failed += hint is not None
    return 1 if failed else 0
