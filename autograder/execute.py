"""nbgrader's Execute, with hidden checks that run outside the student's kernel.

For each autograded test cell only the visible asserts run in the kernel.
Then a generic probe (``probe.py``: no reference, no expected values) runs the
student's class on secret inputs and saves what came out; the grader loads it
(tensors only), compares with the reference here, and writes the verdict as
the cell's output in the form nbgrader scores: nothing for full points, a
number for partial credit, an error for none.
"""
import copy
import hashlib
import json
import os
import pathlib
import shutil
import stat
import time

import torch
from nbformat.notebooknode import NotebookNode
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute
from jupyter_core.utils import run_sync
from traitlets import Bool, Integer, Unicode

from . import checks

HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
CASES_FILE = ".grader_cases.pt"
RESULTS_FILE = ".grader_results.pt"
MAX_RESULTS_BYTES = 64 * 2**20
TASK_OF_TESTS = {task + "_tests": task for task in checks.TASKS}
PROBE_SOURCE = (pathlib.Path(__file__).with_name("probe.py")).read_text(encoding="utf-8")
PROBE_CALL = """\
def __grader_probe(task, source=%r):
    import torch
    space = {"__name__": "grader_probe"}
    exec(compile(source, "<probe>", "exec"), space)
    cases = torch.load(%r, weights_only=True)
    torch.save(space["run_cases"](task, get_ipython().user_ns, cases), %r)
__grader_probe(%%r)
del __grader_probe
""" % (PROBE_SOURCE, CASES_FILE, RESULTS_FILE)


def _output_size(content):
    """Rough size in characters of one output message's content."""
    size = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


def _remove(path):
    """Remove a file, a link or a folder the kernel may have planted at ``path``."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:  # gone already, or not ours to remove: the next step then fails safely
        pass


# Said in a notebook when the sandbox stopped its kernel; grade.timeouts reads them back.
MEMORY_LIMIT = "превышен лимит памяти"
DISK_LIMIT = "превышен лимит на файлы"


def limit_message(km, why="ядро остановлено"):
    """``why``, with the sandbox limit that stopped the kernel, if one did."""
    if getattr(km, "memory_exceeded", False):
        return why + f": {MEMORY_LIMIT} ({km.memory_limit_mb} МиБ)"
    if getattr(km, "disk_exceeded", False):
        return why + f": {DISK_LIMIT} ({km.disk_limit_mb} МиБ)"
    return why


def error_output(name, why, traceback=None):
    """An error output as nbgrader scores it (a failed cell)."""
    return NotebookNode(output_type="error", ename=name, evalue=why,
                        traceback=[traceback or f"{name}: {why}"])


def case_seed(secret):
    """Deterministic for a course, unknown without the instructor's secret."""
    return int(hashlib.sha256(f"gpt-course:{secret}".encode()).hexdigest()[:12], 16)


def reference_results(task, secret, cache_dir="", own_deps=False):
    """(cases, reference outputs) for ``task``, cached in ``cache_dir``."""
    seed = case_seed(secret)
    cases = checks.make_cases(task, seed, own_deps)
    if not cache_dir:
        return cases, checks.run_reference(task, cases)
    path = pathlib.Path(cache_dir) / f"{task}-{seed}{'-own' if own_deps else ''}.pt"
    if path.is_file():
        return cases, torch.load(path, weights_only=True)
    want = checks.run_reference(task, cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(want, partial)
    os.replace(partial, path)
    return cases, want


def visible_part(source):
    return source.split(HIDDEN_MARK, 1)[0].rstrip()


def verdict_outputs(verdict, visible):
    """Cell outputs that make nbgrader record ``verdict.points``."""
    notes = []
    for out in visible:
        if out.get("output_type") == "error":
            notes.append(f"Видимые тесты: {out.get('ename')}: {out.get('evalue')}")
    text = "\n".join(notes + [verdict.message]) + "\n"
    if verdict.points <= 0:
        return [NotebookNode(output_type="error", ename="AssertionError",
                             evalue=verdict.message, traceback=text.rstrip("\n").split("\n"))]
    outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
    if verdict.points < verdict.max_points:
        outputs.append(NotebookNode(output_type="execute_result", execution_count=None,
                                    metadata={}, data={"text/plain": f"{verdict.points:g}"}))
    return outputs


RESET_CALL = "get_ipython().reset(new_session=False)\nimport os as __os; __os.chdir(%r); del __os\n"
_SHARED_KERNEL = {}


def shutdown_shared_kernel():
    """Stop the kernel reused across one student's notebooks, if any."""
    km = _SHARED_KERNEL.pop("km", None)
    if km is None:
        return
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # a kernel killed for a limit can't be asked: just clean up
        for step in (km._async_kill_kernel, km._async_cleanup_resources):
            try:
                run_sync(step)()
            except Exception:
                pass


class ProbingExecute(Execute):
    """Execute whose hidden checks compare outside the kernel."""

    secret = Unicode("", help="Instructor's secret for the hidden inputs.").tag(config=True)
    student = Unicode("", help="Student id (seeds the hidden inputs).").tag(config=True)
    probe_timeout = Integer(120, help="Seconds for one probe.").tag(config=True)
    reference_dir = Unicode("", help="Cache of the reference outputs (outside the kernel's reach).").tag(config=True)
    siblings = Unicode("", help="Folder of the student's other notebooks, which later steps import.").tag(config=True)
    verdict_file = Unicode("", help="JSON file collecting verdicts (outside the kernel's reach).").tag(config=True)

    kernel_dir = Unicode("", help="Folder the kernel runs in (copies of the student's files); "
                                  "default: the notebook's folder.").tag(config=True)
    max_output_bytes = Integer(2 * 2**20, help="Output kept per notebook; the rest is dropped "
                                               "as it arrives, with a note.").tag(config=True)
    notebook_timeout = Integer(600, help="Seconds for a whole notebook; later cells are skipped.").tag(config=True)
    sandbox = Bool(False, help="Run every kernel in the bubblewrap sandbox "
                               "(sandbox.SandboxedKernelManager).").tag(config=True)
    reuse_kernel = Bool(False, help="Run one student's notebooks in one kernel, reset between them "
                                    "(saves a kernel start and `import torch` per notebook).").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # nbgrader's Execute passes kernel_manager_class as an argument, which
        # beats any configured value: choose the sandbox here.
        if self.sandbox:
            from .sandbox import SandboxedKernelManager
            self.kernel_manager_class = SandboxedKernelManager

    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox and not getattr(km or self.kernel_manager_class, "sandboxed", False):
            raise RuntimeError("sandbox requested but the kernel manager is not sandboxed")
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_timeout = self.timeout
        self._reset_first = False
        self._pending = []
        self._dead = False
        if self.reuse_kernel and km is None:
            km = _SHARED_KERNEL.get("km")
            if km is not None and not (km.has_kernel and run_sync(km.is_alive)()):
                shutdown_shared_kernel()
                km = None
            self._reset_first = km is not None
            if km is None:
                km = self.kernel_manager_class(kernel_name=self.kernel_name or "python3",
                                               parent=self)
                _SHARED_KERNEL["km"] = km
        self.student = self.student or resources.get("nbgrader", {}).get("student", "")
        notebook_dir = pathlib.Path(resources.get("metadata", {}).get("path") or ".")
        self._workdir = notebook_dir
        if self.kernel_dir:
            # The kernel never sees the folder nbgrader writes the autograded
            # notebooks (hidden test cells restored) into: it runs in a folder
            # of its own with copies of the student's files.
            self._workdir = pathlib.Path(self.kernel_dir)
            if not self._reset_first:
                # a new kernel starts clean: nothing left by one that was killed
                _remove(self._workdir)
            self._workdir.mkdir(parents=True, exist_ok=True)
            for path in notebook_dir.iterdir():
                target = self._workdir / path.name
                if (path.suffix != ".ipynb" and path.is_file() and not path.is_symlink()
                        and not os.path.lexists(target)):
                    shutil.copy(path, target)
            resources.setdefault("metadata", {})["path"] = str(self._workdir)
        self._output_bytes = 0
        self._current_index = -1
        self._truncated = False
        self._final_outputs = {}
        if self.siblings:
            for path in pathlib.Path(self.siblings).glob("*.ipynb"):
                target = self._workdir / path.name
                if not target.exists() and not target.is_symlink() and not path.is_symlink():
                    shutil.copy(path, target)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except Exception as exc:  # e.g. a kernel that dies while starting: this notebook only
            self.log.warning("notebook stopped: %s: %s", type(exc).__name__, exc)
            nb = self.nb
            timed_out = isinstance(exc, TimeoutError) or "timeout" in str(exc).lower()
            name = "CellTimeoutError" if timed_out else "DeadKernelError"
            why = ("ячейка не завершилась и не прервалась: ядро остановлено" if timed_out
                   else limit_message(km, "ядро не запустилось или упало"))
            if 0 <= self._current_index < len(nb.cells) and nb.cells[self._current_index].cell_type == "code":
                nb.cells[self._current_index].setdefault("outputs", []).append(error_output(name, why))
            self.fail_unfinished(nb, why)
            shutdown_shared_kernel()
        if getattr(km, "check_limits", None) and not self._dead and km.check_limits():
            # over a limit by the end of this notebook: say so here, not in the next one
            why = limit_message(km)
            code = [c for c in nb.cells if c.cell_type == "code"]
            if code:
                code[-1].outputs.append(error_output("DeadKernelError", why))
        # Verdict outputs are final: nothing the kernel sent later (a display
        # update aimed at them, say) changes what nbgrader scores.
        for index, outputs in self._final_outputs.items():
            nb.cells[index].outputs = outputs
        return nb, resources

    def fail_unfinished(self, nb, why):
        """0 points for every graded test cell without a verdict yet."""
        self._dead = True
        for index, cell in enumerate(nb.cells):
            task = TASK_OF_TESTS.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
            if task is None or index in self._final_outputs or not cell.metadata["nbgrader"].get("grade"):
                continue
            verdict = checks.Verdict(task, 0.0, checks.POINTS[task], [("kernel_died", why)], [])
            cell.outputs = [error_output("DeadKernelError", why)]
            self._final_outputs[index] = copy.deepcopy(cell.outputs)
            self.save_verdict(verdict)
        self._pending = []

    # ---- output: capped while it arrives, not after
    def output(self, outs, msg, display_id, cell_index):
        size = _output_size(msg.get("content", {}))
        if self._output_bytes + size > self.max_output_bytes:
            if not self._truncated:
                self._truncated = True
                outs.append(NotebookNode(output_type="stream", name="stdout", text=(
                    f"\n[вывод обрезан: больше {self.max_output_bytes // 2**20} МиБ на ноутбук; "
                    "дальнейший вывод не сохраняется]\n")))
            return None
        self._output_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    def run_hidden_cell(self, source, index, timeout=None):
        """Execute code the notebook does not show; keep the notebook's cell in place."""
        own = self.nb.cells[index]
        probe_cell = NotebookNode(cell_type="code", source=source, metadata={}, outputs=[],
                                  execution_count=None)
        saved_timeout = self.timeout
        try:
            self.timeout = timeout or self.timeout
            self.execute_cell(probe_cell, index, store_history=False)
        finally:
            self.timeout = saved_timeout
            self.nb.cells[index] = own
        return probe_cell

    def preprocess_cell(self, cell, resources, index):
        self.execute_own_cell(cell, resources, index)
        if index == len(self.nb.cells) - 1:
            self.finish_pending(index, at_end=True)
        return cell, resources

    def execute_own_cell(self, cell, resources, index):
        self._current_index = index
        left = int(self._deadline - time.monotonic())
        if cell.cell_type == "code" and (left <= 0 or self._dead):
            name, why = (("DeadKernelError", "ядро упало раньше") if self._dead else
                         ("CellTimeoutError", "время на ноутбук исчерпано"))
            cell.outputs = [error_output(name, why, f"{name}: {why}, ячейка не выполнялась")]
            return
        try:
            self._execute_own_cell(cell, resources, index, left)
        except DeadKernelError:
            self._dead = True
            why = limit_message(self.km, "ядро упало в этой ячейке")
            cell.outputs.append(error_output("DeadKernelError", why))

    def _execute_own_cell(self, cell, resources, index, left):
        self.timeout = max(1, min(self._cell_timeout, left))
        if self._reset_first:
            self._reset_first = False
            self.run_hidden_cell(RESET_CALL % str(self._workdir.resolve()), index)
        meta = cell.metadata.get("nbgrader", {})
        task = TASK_OF_TESTS.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or task is None:
            super().preprocess_cell(cell, resources, index)
            return
        full = cell.source
        cell.source = visible_part(full)
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = full
        self._pending.append((task, cell, index))
        self.finish_pending(index, at_end=False)

    def finish_pending(self, index, at_end):
        """Probe the pending tasks; a class not defined yet waits for the last cell."""
        waiting = []
        for task, cell, cell_index in self._pending:
            verdict = self.hidden_verdict(task, index) if not self._dead else checks.Verdict(
                task, 0.0, checks.POINTS[task], [("kernel_died", "ядро упало до скрытых проверок")], [])
            if not at_end and [k for k, _ in verdict.mistakes] == ["class_missing"]:
                waiting.append((task, cell, cell_index))
                continue
            cell.outputs = verdict_outputs(verdict, cell.outputs)
            self.clear_display_id_mapping(cell_index)
            self._final_outputs[cell_index] = copy.deepcopy(cell.outputs)
            self.save_verdict(verdict)
        self._pending = waiting

    def save_verdict(self, verdict):
        if not self.verdict_file:
            return
        path = pathlib.Path(self.verdict_file)
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        saved[verdict.task] = {"points": verdict.points, "mistakes": verdict.mistakes,
                               "passed": verdict.passed}
        path.write_text(json.dumps(saved, ensure_ascii=False, indent=1), encoding="utf-8")

    def hidden_verdict(self, task, index):
        return checks.best_verdict(task, lambda own_deps: None if own_deps and self._dead
                                   else self.probed_verdict(task, index, own_deps))

    def probed_verdict(self, task, index, own_deps):
        cases, want = reference_results(task, self.secret, self.reference_dir, own_deps)
        got = self.run_probe(task, cases, index)
        if got is None:
            return checks.Verdict(task, 0.0, checks.POINTS[task], [(
                "probe_failed", "скрытые проверки не смогли выполниться: ядро упало, "
                                "превышено время или память, или код меняет окружение")], [])
        return checks.grade(task, cases, got, want)

    def run_probe(self, task, cases, index):
        cases_path = self._workdir / CASES_FILE
        results_path = self._workdir / RESULTS_FILE
        for path in (results_path, cases_path):
            _remove(path)
        partial = self._workdir / f".grader-{os.getpid()}-{time.monotonic_ns()}.tmp"
        torch.save(cases, partial)  # a fresh name: nothing planted there to follow
        try:
            os.replace(partial, cases_path)
        except OSError:  # something planted there again
            _remove(partial)
            return None
        try:
            self.run_hidden_cell(PROBE_CALL % task, index, self.probe_timeout)
        except DeadKernelError:
            self._dead = True
            return None
        except Exception:  # timeout: the verdict says so
            return None
        finally:
            _remove(cases_path)
        try:
            fd = os.open(results_path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RESULTS_BYTES:
                    return None
                got = torch.load(f, weights_only=True)
        except Exception:
            return None
        finally:
            _remove(results_path)
        if not isinstance(got, list) or len(got) != len(cases) or not all(isinstance(g, dict) for g in got):
            return None
        return got
