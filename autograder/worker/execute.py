"""nbgrader's Execute step, with hidden checks that run outside the student's kernel.

RUNS IN A GRADING WORKER (one student at a time). For each autograded test cell only
the visible asserts run in the kernel; then the task's hidden checks (hidden_checks.py)
give the verdict, written as the cell's output in the form nbgrader scores
(cell_outputs.py). This class keeps nbgrader's cell hooks only: the student's kernel is
the kernel session's (kernel_session.py), what happened goes into the student's record
(record.py), test cells left without a verdict are settled by rescue.py, and what the
kernel sends is untrusted input (guarded_execute.py).
"""
import copy
import time

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Integer, Unicode

from ..course import TASK_OF_GRADE_ID
from ..notebooks import visible_part
from . import kernel_workdir, rescue
from .cell_outputs import OutputCap, error_output, verdict_outputs
from .guarded_execute import GuardedExecute
from .hidden_checks import HiddenChecks, KernelRun, failed_solution
from .kernel_session import KERNEL_TROUBLE, KernelSession
from .record import Record, stop_event

__all__ = ["KERNEL_TROUBLE", "ProbingExecute"]


class ProbingExecute(GuardedExecute):
    """Execute whose graded test cells get the verdict of hidden checks compared outside the kernel."""

    secret = Unicode("", help="Instructor's secret for the hidden inputs.").tag(config=True)
    fingerprint = Unicode("", help="Grader fingerprint: keys the reference cache.").tag(config=True)
    student = Unicode("", help="Student id.").tag(config=True)
    probe_timeout = Integer(120, help="Seconds for all the hidden checks of one task.").tag(config=True)
    reference_dir = Unicode("", help="Cache of the reference outputs (outside the kernel's reach).").tag(config=True)
    siblings = Unicode("", help="Folder of the student's other notebooks, which later steps import.").tag(config=True)
    kernel_dir = Unicode("", help="Folder the kernel runs in (copies of the student's files); "
                                  "default: the notebook's folder.").tag(config=True)
    notebook_timeout = Integer(600, help="Seconds for a whole notebook; later cells are skipped.").tag(config=True)
    sandbox = Bool(False, help="Run every kernel in the bubblewrap sandbox.").tag(config=True)
    reuse_kernel = Bool(False, help="Run one student's notebooks in one kernel, reset between them "
                                    "(saves a kernel start and `import torch` per notebook).").tag(config=True)
    rescue = Bool(True, help="When an earlier cell (importing an earlier step) kills the kernel, "
                             "probe the task's class again in a fresh kernel with stand-ins.").tag(config=True)

    record = None   # the student's Record: for_student binds it, else a fresh one
    session = None  # the student's KernelSession: likewise

    @classmethod
    def for_student(cls, record, session):
        """This step bound to one student's record and kernel session (nbgrader makes the
        step itself, from the class in its configuration)."""
        return type(cls.__name__, (cls,), {"record": record, "session": session})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # nbgrader's Execute passes kernel_manager_class as an argument, which beats any
        # configured value: choose the sandbox here.
        if self.sandbox:
            from .sandbox import SandboxedKernelManager
            self.kernel_manager_class = SandboxedKernelManager
        self.record = self.record if self.record is not None else Record()
        self.session = self.session if self.session is not None else KernelSession(self.record, self.reuse_kernel)
        self.begin_notebook("notebook")

    def begin_notebook(self, name):
        """Fresh state for the notebook ``name``."""
        self.notebook, self.deadline = name, time.monotonic() + self.notebook_timeout
        self.cap, self.pending, self.final_outputs = OutputCap(self.max_output_bytes), [], {}
        self.dead, self.death_index, self.current_index = False, None, -1
        self.first_code = None  # hidden code to run before the notebook's first cell
        self.died_in_hidden_checks = False  # the task's own class killed the kernel when probed

    # ---- one notebook
    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox and not getattr(km or self.kernel_manager_class, "sandboxed", False):
            raise RuntimeError("sandbox requested but the kernel manager is not sandboxed")
        self.begin_notebook(resources.get("nbgrader", {}).get("notebook", "") or "notebook")
        self.cell_timeout = self.timeout
        reused = False  # the session's kernel ran an earlier notebook
        if km is None:
            km = self.session.manager(self.notebook, lambda: self.kernel_manager_class(
                kernel_name=self.kernel_name or "python3", parent=self))
            reused = km is not None and self.session.ran_before
        self.student = self.student or resources.get("nbgrader", {}).get("student", "")
        self.notebook_dir = resources.get("metadata", {}).get("path") or "."
        self.workdir = kernel_workdir.prepare(self.notebook_dir, self.kernel_dir, self.siblings,
                                              fresh=not reused)
        self.first_code = self.session.reset_code(self.workdir) if reused else self.session.setup_code()
        resources.setdefault("metadata", {})["path"] = str(self.workdir)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except KERNEL_TROUBLE as exc:  # e.g. a kernel that dies while starting: this notebook only
            self.log.warning("notebook stopped: %s: %s", type(exc).__name__, exc)
            nb = self.nb
            if isinstance(exc, TimeoutError) or "timeout" in str(exc).lower():
                kind, why = "timeout", "ячейка не завершилась и не прервалась: ядро остановлено"
            else:
                kind, why = stop_event(km)
                why += ": ядро не запустилось или упало"
            self.note_death(nb, self.current_index, kind, why)
            self.session.shut_down()
        if getattr(km, "check_limits", None) and not self.dead and km.check_limits():
            # over a limit by the end of this notebook: say so here, not in the next one
            kind, why = stop_event(km)
            self.record.event(self.notebook, kind, why)
            code = [c for c in nb.cells if c.cell_type == "code"]
            if code:
                code[-1].outputs.append(error_output("DeadKernelError", why))
        self.close_client()
        rescue.settle_unfinished(self, nb, resources)
        # Verdict outputs are final: nothing the kernel sent later (a display update aimed at
        # them, say) changes what nbgrader scores.
        for index, outputs in self.final_outputs.items():
            nb.cells[index].outputs = outputs
        return nb, resources

    def close_client(self):
        """Stop this notebook's kernel client: nbclient keeps it, sockets and all, when the
        kernel is the session's (a worker grades many students, five notebooks each)."""
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None

    def note_death(self, nb, index, kind, why):
        """The kernel stopped in cell ``index``: say so there and record it."""
        self.dead = True
        if self.death_index is None:
            self.death_index = index
        self.record.event(self.notebook, kind, why)
        if 0 <= index < len(nb.cells) and nb.cells[index].cell_type == "code":
            name = "CellTimeoutError" if kind == "timeout" else "DeadKernelError"
            nb.cells[index].setdefault("outputs", []).append(error_output(name, why))

    def finish(self, cell, index, verdict):
        """Record ``verdict`` for the test cell at ``index``; its outputs become final."""
        self.clear_display_id_mapping(index)
        self.final_outputs[index] = copy.deepcopy(cell.outputs)
        self.record.verdicts[verdict.task] = verdict

    # ---- cells
    def preprocess_cell(self, cell, resources, index):
        self.current_index = index
        left = int(self.deadline - time.monotonic())
        if cell.cell_type == "code" and (left <= 0 or self.dead):
            name, why = ("DeadKernelError", "ядро упало раньше") if self.dead else (
                "CellTimeoutError", "время на ноутбук исчерпано")
            if not self.dead:
                self.record.event(self.notebook, "timeout", why)
            cell.outputs = [error_output(name, why, f"{name}: {why}, ячейка не выполнялась")]
        else:
            try:
                self.execute_own_cell(cell, resources, index, left)
            except DeadKernelError:
                kind, why = stop_event(self.km)
                self.note_death(self.nb, index, kind, why + " в этой ячейке")
        if index == len(self.nb.cells) - 1:
            self.finish_pending(index, at_end=True)
        return cell, resources

    def execute_own_cell(self, cell, resources, index, left):
        self.timeout = max(1, min(self.cell_timeout, left))
        if self.first_code is not None:
            first_code, self.first_code = self.first_code, None
            self.run_hidden_cell(first_code, index)
        meta = rescue.grade_meta(cell)
        spec = TASK_OF_GRADE_ID.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or spec is None or spec.tests_id != meta["grade_id"]:
            super().preprocess_cell(cell, resources, index)
            return
        full, cell.source = cell.source, visible_part(cell.source)  # hidden tests never reach the kernel
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = full
        self.pending.append((spec, cell, index))
        self.finish_pending(index, at_end=False)

    def finish_pending(self, index, at_end):
        """Check the pending tasks; a class not defined yet waits for the last cell."""
        waiting = []
        for spec, cell, cell_index in self.pending:
            verdict = None if self.dead else HiddenChecks(spec, self.workdir, self, self.kernel_runner(index),
                                                          self.record, self.log).verdict()
            if verdict is None or (not at_end and verdict.mistake_keys == ["class_missing"]):
                waiting.append((spec, cell, cell_index))  # settled at the end
                continue
            if verdict.mistake_keys == ["class_missing"]:
                verdict = failed_solution(self.nb, spec) or verdict
            cell.outputs = verdict_outputs(verdict, cell.outputs)
            self.finish(cell, cell_index, verdict)
        self.pending = waiting

    def kernel_runner(self, index):
        """How the hidden checks of the test cell at ``index`` run code in the kernel. A death
        there is the task's own class's doing: it is recorded, and no rescue follows."""
        def run(code, timeout, during):
            try:
                cell = self.run_hidden_cell(code, index, timeout)
            except DeadKernelError:
                kind, why = stop_event(self.km)
                self.note_death(self.nb, -1, kind, f"{why} {during}")
                self.death_index, self.died_in_hidden_checks = index, True
                return KernelRun(False, kind)
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            return KernelRun(True, error=f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}"[:200]
                             if errors else "")
        return run

    def run_hidden_cell(self, source, index, timeout=None):
        """Execute code the notebook does not show; keep the notebook's cell in place."""
        own = self.nb.cells[index]
        hidden = NotebookNode(cell_type="code", source=source, metadata={}, outputs=[], execution_count=None)
        saved, self.timeout = self.timeout, timeout or self.timeout
        try:
            self.execute_cell(hidden, index, store_history=False)
        finally:
            self.timeout, self.nb.cells[index] = saved, own
        return hidden
