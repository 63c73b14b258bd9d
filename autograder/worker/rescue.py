"""Verdicts for the graded test cells a notebook's run left without one.

RUNS IN A GRADING WORKER. A class that kills or wedges its kernel costs only its own task:
when the kernel died before a task's hidden checks ran (importing an earlier step killed
it, or the visible tests did, which use the student's earlier classes: ``os._exit``,
broken builtins, an output flood), the task's class is probed alone in a fresh kernel,
its cell run with stand-ins for the classes it uses, and only the hidden checks run: a
class that kills its kernel itself is named for it there. Any other test cell left
without a verdict gets "kernel died" or "timeout".
"""
import copy

from nbformat.notebooknode import NotebookNode

from ..checks import scoring
from ..course import HIDDEN_BEGIN, TASK_OF_GRADE_ID
from ..notebooks import find_cell
from . import kernel_calls
from .cell_outputs import error_output, note_output
from .kernel_session import KernelSession


def grade_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def settle_unfinished(step, nb, resources):
    """A verdict for every graded test cell of ``nb`` that ``step`` (a ProbingExecute) left without one."""
    for index, cell in enumerate(nb.cells):
        spec = TASK_OF_GRADE_ID.get(grade_meta(cell).get("grade_id"))
        if (spec is None or index in step.final_outputs or not grade_meta(cell).get("grade")
                or cell.cell_type != "code"):
            continue
        verdict = None
        if step.rescue and step.dead and died_before_checks(step, nb, spec):
            verdict, outputs = rescue_task(step, nb, resources, spec)
            if verdict is not None:
                cell.outputs = outputs
        if verdict is None:
            verdict = scoring.failed(spec.key, "kernel_died" if step.dead else "timeout")
            cell.outputs = [error_output("DeadKernelError", verdict.mistakes[0][1])]
        step.finish(cell, index, verdict)
    step.pending = []


def died_before_checks(step, nb, spec):
    """The kernel died before the task's hidden checks ran: in a cell before its test cell
    (an earlier step's import) or in the test cell's visible part."""
    if step.death_index is None or step.died_in_hidden_checks:
        return False
    for index, cell in enumerate(nb.cells):
        if grade_meta(cell).get("grade_id") == spec.tests_id:
            return 0 <= step.death_index <= index
    return False


def rescue_task(step, nb, resources, spec):
    """Probe the task's class alone in a fresh kernel: (verdict, outputs) or (None, None)."""
    preamble = NotebookNode(cell_type="code", source=kernel_calls.source("rescue_imports"), metadata={},
                            outputs=[], execution_count=None)
    tests = copy.deepcopy(find_cell(nb, spec.tests_id))
    tests.source = HIDDEN_BEGIN  # no visible asserts: they need the earlier steps
    alone = NotebookNode(nbformat=4, nbformat_minor=5, metadata=copy.deepcopy(nb.metadata),
                         cells=[preamble, copy.deepcopy(find_cell(nb, spec.solution_id)), tests])
    step.session.shut_down()
    session = KernelSession(step.record)
    helper = type(step).for_student(step.record, session)(config=step.config, parent=step.parent, rescue=False)
    helper.kernel_manager_class = step.kernel_manager_class
    resources = copy.deepcopy(resources)
    resources.setdefault("metadata", {})["path"] = str(step.notebook_dir)
    try:
        done, _ = helper.preprocess(alone, resources)
    except Exception as exc:  # the task keeps kernel_died; the grader's failure is recorded  # noqa: BLE001
        step.record.errors.append(f"rescue of {spec.key} failed: {type(exc).__name__}: {exc}"[:300])
        return None, None
    finally:
        session.shut_down()
    verdict = step.record.verdicts.get(spec.key)
    if verdict is None:
        return None, None
    note = note_output("Ядро остановилось раньше скрытых проверок (при импорте предыдущего шага или в видимых "
                       f"тестах, которые вызывают ваши классы других шагов): класс {spec.cls} проверен отдельно, "
                       "с заменами вместо классов других шагов.")
    return verdict, [note] + list(done.cells[2].outputs)
