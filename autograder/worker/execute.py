"""nbgrader's Execute, with hidden checks that run outside the student's kernel.

RUNS IN A GRADING WORKER (one student at a time). For each autograded test
cell only the visible asserts run in the kernel. Then the generic probe
(``kernel/probe.py``: no reference, no expected values) runs the student's
class on secret inputs and saves what came out; the grader loads it (tensors
only), compares it with the reference here (``checks.scoring``), and writes the
verdict as the cell's output in the form nbgrader scores: nothing for full
points, a number for partial credit, an error for none.

What happens is also recorded as data in ``RECORD`` (verdicts per task,
events per notebook), which the worker turns into the student's result record.
"""
import copy
import dataclasses
import pathlib
import os
import time
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message
from nbformat.notebooknode import NotebookNode
from nbclient.exceptions import CellControlSignal, CellExecutionComplete, DeadKernelError
from nbgrader.preprocessors import Execute
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import run_sync
from traitlets import Bool, Integer, Unicode

from ..checks import cases as checks_cases, reference, scoring
from ..course import HIDDEN_BEGIN, TASK_OF_GRADE_ID
from ..notebooks import visible_part
from ..results import Event
from . import kernel_folders, probe_exchange


@dataclasses.dataclass
class Record:
    """What one student's notebooks produced: verdicts and events, as data."""

    verdicts: dict = dataclasses.field(default_factory=dict)  # task -> TaskResult
    events: list = dataclasses.field(default_factory=list)    # [Event]
    errors: list = dataclasses.field(default_factory=list)    # the grader's own failures (text)

    def event(self, notebook, kind, detail=""):
        if not any(e.notebook == notebook and e.kind == kind for e in self.events):
            self.events.append(Event(notebook, kind, detail))


RECORD = Record()
# What a student's kernel can do to a notebook's run (die, wedge, fail to start); anything
# else raised there is the grader's own failure and reaches the worker's error record.
KERNEL_TROUBLE = (RuntimeError, TimeoutError, OSError, zmq.ZMQError)


def start_record():
    """A fresh record for the next student (the worker calls this)."""
    global RECORD
    RECORD = Record()
    return RECORD


def death_kind(km):
    """Event kind and Russian words for a kernel that stopped."""
    if getattr(km, "memory_exceeded", False):
        return "memory", f"превышен лимит памяти ({km.memory_limit_mb} МиБ)"
    if getattr(km, "disk_exceeded", False):
        return "disk", f"превышен лимит на файлы ({km.disk_limit_mb} МиБ)"
    return "kernel_died", "ядро упало"


def error_output(name, why, traceback=None):
    """An error output as nbgrader scores it (a failed cell)."""
    return NotebookNode(output_type="error", ename=name, evalue=why,
                        traceback=[traceback or f"{name}: {why}"])


def verdict_outputs(verdict, visible):
    """Cell outputs that make nbgrader record ``verdict.points``."""
    notes = []
    for out in visible:
        if out.get("output_type") == "error":
            notes.append(f"Видимые тесты: {out.get('ename')}: {out.get('evalue')}")
    text_message = scoring.message(verdict)
    text = "\n".join(notes + [text_message]) + "\n"
    if verdict.points <= 0:
        return [NotebookNode(output_type="error", ename="AssertionError",
                             evalue=text_message, traceback=text.rstrip("\n").split("\n"))]
    outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
    if verdict.points < verdict.max_points:
        outputs.append(NotebookNode(output_type="execute_result", execution_count=None,
                                    metadata={}, data={"text/plain": f"{verdict.points:g}"}))
    return outputs


def writable_text(value):
    """``value`` with every string made encodable as UTF-8 (lone surrogates become '?')."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {writable_text(k): writable_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [writable_text(v) for v in value]
    return value


def _output_size(content):
    """Rough size in characters of one output message's content."""
    import json
    size = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


# Between two notebooks in one kernel. What survives the reset (torch, IPython, the modules
# imported) is frozen: later resets and the garbage collector's full passes skip it
# (a full pass over torch's objects takes ~70 ms; four resets a student).
RESET_CALL = ("get_ipython().reset(new_session=False)\n"
              "import gc as __gc; __gc.freeze(); del __gc\n"
              "import os as __os; __os.chdir(%r); del __os\n")
# What a class cell needs when it is run on its own (see ProbingExecute.rescue).
RESCUE_PREAMBLE = ("import math\nimport torch\nimport torch.nn as nn\n"
                   "from torch.nn import functional as F\n")
_SHARED_KERNEL = {}


def shutdown_shared_kernel():
    """Stop the kernel reused across one student's notebooks, if any.

    A kernel its watchdog killed after its last notebook ended (a thread still
    allocating, files still growing) leaves that notebook's event in the record.
    """
    km = _SHARED_KERNEL.pop("km", None)
    notebook = _SHARED_KERNEL.pop("notebook", None)
    if km is None:
        return
    if notebook and (getattr(km, "memory_exceeded", False) or getattr(km, "disk_exceeded", False)):
        RECORD.event(notebook, *death_kind(km))
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # a kernel killed for a limit can't be asked: just clean up
        for step in (km._async_kill_kernel, km._async_cleanup_resources):
            try:
                run_sync(step)()
            except Exception:  # nothing left to stop
                pass


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized messages and queue few of them, so
    that what a kernel sends is bounded before the grader buffers it: ZeroMQ drops a message
    over ``MAXMSGSIZE`` with the connection it came on, which reconnects, and ``dropped``
    says so (the message is lost, and may be the cell's last one)."""

    max_message_bytes = Integer(3 * 2**20, help="Largest message taken from a kernel (bytes): "
                                "above ProbingExecute.max_output_bytes, which nothing larger fits.").tag(config=True)
    queued_messages = Integer(64, help="Messages queued per socket; a flood beyond it waits in "
                              "the kernel, or is dropped there.").tag(config=True)
    _monitors = ()

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        context.setsockopt(zmq.RCVHWM, self.queued_messages)
        return context

    def start_channels(self, *args, **kwargs):
        super().start_channels(*args, **kwargs)
        self._monitors = []
        for channel in (self.iopub_channel, self.shell_channel):
            address = f"inproc://kernel-client-{uuid.uuid4().hex}"
            channel.socket.monitor(address, zmq.EVENT_DISCONNECTED)
            monitor = self.context.socket(zmq.PAIR)  # the context's own: closed with it
            monitor.connect(address)
            self._monitors.append((channel.socket, monitor))

    def dropped(self):
        """How often ZeroMQ dropped a connection to the kernel since the last call."""
        count = 0
        for _, monitor in self._monitors:
            reader = zmq.Socket.shadow(monitor.underlying)  # a plain read, not a future
            while True:
                try:
                    recv_monitor_message(reader, zmq.NOBLOCK)
                except zmq.Again:
                    break
                count += 1
        return count

    def stop_channels(self):
        for socket, monitor in self._monitors:
            try:
                socket.disable_monitor()
            except zmq.ZMQError:  # the socket is closed already
                pass
            monitor.close(linger=0)
        self._monitors = ()
        super().stop_channels()


def _grade_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


class ProbingExecute(Execute):
    """Execute whose hidden checks compare outside the kernel."""

    secret = Unicode("", help="Instructor's secret for the hidden inputs.").tag(config=True)
    fingerprint = Unicode("", help="Grader fingerprint: keys the reference cache.").tag(config=True)
    student = Unicode("", help="Student id.").tag(config=True)
    probe_timeout = Integer(120, help="Seconds for one probe.").tag(config=True)
    reference_dir = Unicode("", help="Cache of the reference outputs (outside the kernel's reach).").tag(config=True)
    siblings = Unicode("", help="Folder of the student's other notebooks, which later steps import.").tag(config=True)
    kernel_dir = Unicode("", help="Folder the kernel runs in (copies of the student's files); "
                                  "default: the notebook's folder.").tag(config=True)
    max_output_bytes = Integer(2 * 2**20, help="Output kept per notebook; the rest is dropped "
                                               "as it arrives, with a note.").tag(config=True)
    notebook_timeout = Integer(600, help="Seconds for a whole notebook; later cells are skipped.").tag(config=True)
    sandbox = Bool(False, help="Run every kernel in the bubblewrap sandbox "
                               "(sandbox.SandboxedKernelManager).").tag(config=True)
    reuse_kernel = Bool(False, help="Run one student's notebooks in one kernel, reset between them "
                                    "(saves a kernel start and `import torch` per notebook).").tag(config=True)
    rescue = Bool(True, help="When an earlier cell (importing an earlier step) kills the kernel, "
                             "probe the task's class again in a fresh kernel with stand-ins.").tag(config=True)
    raise_on_iopub_timeout = Bool(False, help="A cell whose last messages never came (a message over "
                                  "the client's size limit drops its connection) ends after iopub_timeout; "
                                  "the notebook goes on.").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # nbgrader's Execute passes kernel_manager_class as an argument, which
        # beats any configured value: choose the sandbox here.
        if self.sandbox:
            from .sandbox import SandboxedKernelManager
            self.kernel_manager_class = SandboxedKernelManager

    # ---- one notebook
    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox and not getattr(km or self.kernel_manager_class, "sandboxed", False):
            raise RuntimeError("sandbox requested but the kernel manager is not sandboxed")
        self._notebook = resources.get("nbgrader", {}).get("notebook", "") or "notebook"
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_timeout = self.timeout
        self._pending = []
        self._dead = False
        self._death_index = None
        self._final_outputs = {}
        self._output_bytes = 0
        self._current_index = -1
        self._truncated = False
        self._hidden_deadline = time.monotonic() + self.probe_timeout
        km = self._kernel_manager(km)
        self.student = self.student or resources.get("nbgrader", {}).get("student", "")
        self._workdir = self._prepare_workdir(resources)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except KERNEL_TROUBLE as exc:  # e.g. a kernel that dies while starting: this notebook only
            self.log.warning("notebook stopped: %s: %s", type(exc).__name__, exc)
            nb = self.nb
            timed_out = isinstance(exc, TimeoutError) or "timeout" in str(exc).lower()
            if timed_out:
                kind, why = "timeout", "ячейка не завершилась и не прервалась: ядро остановлено"
            else:
                kind, why = death_kind(km)
                why += ": ядро не запустилось или упало"
            self.note_death(nb, self._current_index, kind, why)
            shutdown_shared_kernel()
        if getattr(km, "check_limits", None) and not self._dead and km.check_limits():
            # over a limit by the end of this notebook: say so here, not in the next one
            kind, why = death_kind(km)
            RECORD.event(self._notebook, kind, why)
            code = [c for c in nb.cells if c.cell_type == "code"]
            if code:
                code[-1].outputs.append(error_output("DeadKernelError", why))
        self.settle_unfinished(nb, resources)
        # Verdict outputs are final: nothing the kernel sent later (a display
        # update aimed at them, say) changes what nbgrader scores.
        for index, outputs in self._final_outputs.items():
            nb.cells[index].outputs = outputs
        return nb, resources

    def _kernel_manager(self, km):
        self._reset_first = False
        if not self.reuse_kernel or km is not None:
            return km
        km = _SHARED_KERNEL.get("km")
        if km is not None and not (km.has_kernel and run_sync(km.is_alive)()):
            shutdown_shared_kernel()
            km = None
        self._reset_first = km is not None
        if km is None:
            km = self.kernel_manager_class(kernel_name=self.kernel_name or "python3", parent=self)
            _SHARED_KERNEL["km"] = km
        _SHARED_KERNEL["notebook"] = self._notebook
        return km

    def _prepare_workdir(self, resources):
        """The kernel's folder: copies of the student's files, never nbgrader's."""
        notebook_dir = pathlib.Path(resources.get("metadata", {}).get("path") or ".")
        self._notebook_dir = notebook_dir
        workdir = notebook_dir
        copies = []
        if self.kernel_dir:
            # The kernel never sees the folder nbgrader writes the autograded
            # notebooks (hidden test cells restored) into.
            workdir = pathlib.Path(os.path.realpath(self.kernel_dir))
            if not self._reset_first:
                # a new kernel starts clean: nothing left by one that was killed
                kernel_folders.remove(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            copies += [path for path in notebook_dir.iterdir() if path.suffix != ".ipynb"]
            resources.setdefault("metadata", {})["path"] = str(workdir)
        if self.siblings:
            copies += sorted(pathlib.Path(self.siblings).glob("*.ipynb"))
        if copies:
            # A kernel kept from the last notebook is still running: names in its folder are
            # reached through the folder's descriptor, never followed, never overwritten.
            with kernel_folders.folder(workdir) as fd:
                for path in copies:
                    kernel_folders.copy_in(path, fd, path.name)
        return workdir

    def note_death(self, nb, index, kind, why):
        """The kernel stopped in cell ``index``: say so there and record it."""
        self._dead = True
        if self._death_index is None:
            self._death_index = index
        RECORD.event(self._notebook, kind, why)
        if 0 <= index < len(nb.cells) and nb.cells[index].cell_type == "code":
            name = "CellTimeoutError" if kind == "timeout" else "DeadKernelError"
            nb.cells[index].setdefault("outputs", []).append(error_output(name, why))

    def settle_unfinished(self, nb, resources):
        """A verdict for every graded test cell that has none yet."""
        for index, cell in enumerate(nb.cells):
            spec = TASK_OF_GRADE_ID.get(_grade_meta(cell).get("grade_id"))
            if (spec is None or index in self._final_outputs or not _grade_meta(cell).get("grade")
                    or cell.cell_type != "code"):
                continue
            verdict = None
            if self.rescue and self._dead and self._killed_before_class(nb, spec):
                verdict, outputs = self.rescue_task(nb, resources, spec)
                if verdict is not None:
                    cell.outputs = outputs
            if verdict is None:
                verdict = scoring.failed(spec.key, "kernel_died" if self._dead else "timeout")
                cell.outputs = [error_output("DeadKernelError", verdict.mistakes[0][1])]
            self.finish(cell, index, verdict)
        self._pending = []

    def _killed_before_class(self, nb, spec):
        """The kernel died in a cell before the task's class (an earlier step's import)."""
        for index, cell in enumerate(nb.cells):
            if _grade_meta(cell).get("grade_id") == spec.solution_id:
                return self._death_index is not None and 0 <= self._death_index < index
        return False

    def rescue_task(self, nb, resources, spec):
        """Probe the task's class alone in a fresh kernel: (verdict, outputs) or (None, None).

        An earlier step that kills the kernel when imported (``os._exit``, broken
        builtins, an output flood) must not cost this task: its class cell runs
        with stand-ins for the classes it uses, and only the hidden checks run.
        """
        solution = next(c for c in nb.cells if _grade_meta(c).get("grade_id") == spec.solution_id)
        tests = next(c for c in nb.cells if _grade_meta(c).get("grade_id") == spec.tests_id)
        cells = [NotebookNode(cell_type="code", source=RESCUE_PREAMBLE, metadata={}, outputs=[],
                              execution_count=None),
                 copy.deepcopy(solution), copy.deepcopy(tests)]
        cells[2].source = HIDDEN_BEGIN  # no visible asserts: they need the earlier steps
        synthetic = NotebookNode(nbformat=4, nbformat_minor=5, metadata=copy.deepcopy(nb.metadata),
                                 cells=cells)
        shutdown_shared_kernel()
        helper = type(self)(config=self.config, parent=self.parent, rescue=False)
        helper.kernel_manager_class = self.kernel_manager_class
        sub_resources = copy.deepcopy(resources)
        sub_resources.setdefault("metadata", {})["path"] = str(self._notebook_dir)
        try:
            done, _ = helper.preprocess(synthetic, sub_resources)
        except Exception as exc:  # the task keeps kernel_died; the grader's failure is recorded
            RECORD.errors.append(f"rescue of {spec.key} failed: {type(exc).__name__}: {exc}"[:300])
            return None, None
        finally:
            shutdown_shared_kernel()
        verdict = RECORD.verdicts.get(spec.key)
        if verdict is None:
            return None, None
        note = NotebookNode(output_type="stream", name="stdout", text=(
            "Ядро упало в ячейке до класса (при импорте предыдущего шага): видимые тесты не "
            f"выполнялись, класс {spec.cls} проверен отдельно, с заменами вместо классов других шагов.\n"))
        return verdict, [note] + list(done.cells[2].outputs)

    def finish(self, cell, index, verdict):
        """Record ``verdict`` for the test cell at ``index``; its outputs become final."""
        self.clear_display_id_mapping(index)
        self._final_outputs[index] = copy.deepcopy(cell.outputs)
        RECORD.verdicts[verdict.task] = verdict

    # ---- messages from the student's kernel: untrusted input
    def process_message(self, msg, cell, cell_index):
        """nbclient's handling, except that a malformed message is dropped and noted.

        The kernel can send anything (a widget ``comm_open`` without ``state``,
        ``data`` that is not a dict, text with lone surrogates that no file can
        hold): nbclient or nbformat would raise, and nbgrader would drop every
        notebook of the student.
        """
        try:
            msg["content"] = writable_text(msg["content"])
            return super().process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            raise
        except Exception as exc:
            self.log.warning("malformed kernel message dropped: %s: %s", type(exc).__name__, exc)
            RECORD.event(self._notebook, "bad_message",
                         f"сообщение ядра не по протоколу пропущено ({msg.get('msg_type', '?')})")
            return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        """nbclient's execution, except that a reply breaking the protocol fails this cell only.

        The kernel can forge its own ``execute_reply`` (no ``status``) or send
        messages whose headers are not dicts: nbclient would raise out of the
        notebook, and nbgrader would drop every notebook of the student.
        """
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            self.note_dropped_messages(cell)
            return cell
        except (CellControlSignal, DeadKernelError):
            raise
        except Exception as exc:
            self.log.warning("kernel broke the protocol: %s: %s", type(exc).__name__, exc)
            RECORD.event(self._notebook, "bad_message",
                         f"ответ ядра не по протоколу ({type(exc).__name__})")
            cell.setdefault("outputs", []).append(error_output(
                "KernelProtocolError", "ядро прислало ответ не по протоколу: ячейка не засчитана"))
            return cell

    execute_cell = run_sync(async_execute_cell)

    async def async_start_new_kernel_client(self):
        """nbclient's, with any failure made kernel trouble: a thread the student left running
        in a reused kernel can forge the ``kernel_info_reply`` the client waits for."""
        if self.km is not None:
            self.km.client_factory = BoundedKernelClient
        try:
            return await super().async_start_new_kernel_client()
        except KERNEL_TROUBLE:
            raise
        except Exception as exc:
            raise RuntimeError(f"kernel client did not start: {type(exc).__name__}: {exc}") from exc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def note_dropped_messages(self, cell):
        """Say so, once per notebook, when the client dropped an oversized message of the kernel's."""
        dropped = getattr(self.kc, "dropped", None)
        if dropped is None or not dropped():
            return
        limit = BoundedKernelClient.max_message_bytes.default_value // 2**20
        if not any(e.notebook == self._notebook and e.kind == "output_cut" for e in RECORD.events):
            cell.setdefault("outputs", []).append(NotebookNode(output_type="stream", name="stdout", text=(
                f"\n[вывод обрезан: сообщение ядра больше {limit} МиБ пропущено]\n")))
        RECORD.event(self._notebook, "output_cut", f"сообщение ядра больше {limit} МиБ пропущено")

    # ---- output: capped while it arrives, not after
    def output(self, outs, msg, display_id, cell_index):
        size = _output_size(msg.get("content", {}))
        if self._output_bytes + size > self.max_output_bytes:
            if not self._truncated:
                self._truncated = True
                RECORD.event(self._notebook, "output_cut",
                             f"вывод больше {self.max_output_bytes // 2**20} МиБ обрезан")
                outs.append(NotebookNode(output_type="stream", name="stdout", text=(
                    f"\n[вывод обрезан: больше {self.max_output_bytes // 2**20} МиБ на ноутбук; "
                    "дальнейший вывод не сохраняется]\n")))
            return None
        self._output_bytes += size
        return super().output(outs, msg, display_id, cell_index)

    async def _async_handle_timeout(self, timeout, cell=None):
        RECORD.event(self._notebook, "timeout", f"ячейка дольше {timeout} с")
        return await super()._async_handle_timeout(timeout, cell)

    # ---- cells
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
            if self._dead:
                name, why = "DeadKernelError", "ядро упало раньше"
            else:
                name, why = "CellTimeoutError", "время на ноутбук исчерпано"
                RECORD.event(self._notebook, "timeout", why)
            cell.outputs = [error_output(name, why, f"{name}: {why}, ячейка не выполнялась")]
            return
        try:
            self._execute_own_cell(cell, resources, index, left)
        except DeadKernelError:
            kind, why = death_kind(self.km)
            self.note_death(self.nb, index, kind, why + " в этой ячейке")

    def _execute_own_cell(self, cell, resources, index, left):
        self.timeout = max(1, min(self._cell_timeout, left))
        if self._reset_first:
            self._reset_first = False
            self.run_hidden_cell(RESET_CALL % str(self._workdir.resolve()), index)
        meta = _grade_meta(cell)
        spec = TASK_OF_GRADE_ID.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or spec is None or spec.tests_id != meta["grade_id"]:
            super().preprocess_cell(cell, resources, index)
            return
        full = cell.source
        cell.source = visible_part(full)
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = full
        self._pending.append((spec, cell, index))
        self.finish_pending(index, at_end=False)

    def finish_pending(self, index, at_end):
        """Probe the pending tasks; a class not defined yet waits for the last cell."""
        waiting = []
        for spec, cell, cell_index in self._pending:
            if self._dead:
                waiting.append((spec, cell, cell_index))  # settled at the end
                continue
            verdict = self.hidden_verdict(spec, index)
            if not at_end and verdict.mistake_keys == ["class_missing"]:
                waiting.append((spec, cell, cell_index))
                continue
            cell.outputs = verdict_outputs(verdict, cell.outputs)
            self.finish(cell, cell_index, verdict)
        self._pending = waiting

    # ---- hidden checks
    def hidden_verdict(self, spec, index):
        # One budget for all of the task's hidden cells (probe, second probe, diagnosis): a
        # class that stalls only when probed costs probe_timeout per task, not three times that.
        self._hidden_deadline = time.monotonic() + self.probe_timeout
        verdict = scoring.best_verdict(spec.key, lambda own_deps: None if own_deps and self._dead
                                       else self.probed_verdict(spec, index, own_deps))
        if verdict.points < verdict.max_points and not self._dead \
                and not scoring.FINAL & set(verdict.mistake_keys):
            verdict = scoring.with_diagnosis(verdict, self.run_diagnosis(spec, index))
        return verdict

    def run_diagnosis(self, spec, index):
        """What the course's diagnosis observes of the task's class in the kernel ([] if nothing)."""
        probe_exchange.remove(self._workdir / probe_exchange.RESULTS_FILE)
        if not self.run_grader_code(probe_exchange.diagnose_call(spec), index, "во время диагностики"):
            return []
        return probe_exchange.take_findings(self._workdir)

    def run_grader_code(self, code, index, during):
        """Run the grader's ``code`` in the kernel at cell ``index``; False if it could not run
        (the task's budget for hidden cells is spent, or the kernel died).

        A death here is the task's own class's doing (``index`` is its test cell):
        it is recorded, and no rescue follows.
        """
        left = self._hidden_deadline - time.monotonic()
        if left < 1:
            self.log.warning("no time left for the hidden checks (%s)", during)
            return False
        try:
            self.run_hidden_cell(code, index, int(left))
        except DeadKernelError:
            kind, why = death_kind(self.km)
            self.note_death(self.nb, -1, kind, f"{why} {during}")
            self._death_index = index
            return False
        return True

    def probed_verdict(self, spec, index, own_deps):
        cases = checks_cases.make_cases(spec.key, checks_cases.case_seed(self.secret), own_deps)
        key = f"{checks_cases.case_seed(self.secret)}-{self.fingerprint[:16]}"
        want = reference.cached_outputs(spec.key, cases, self.reference_dir, key)
        got, why = self.run_probe(spec, cases, index)
        if got is None:
            self.log.warning("probe of %s failed: %s", spec.key, why)
            return scoring.failed(spec.key, "probe_failed")
        try:
            return scoring.grade(spec.key, cases, got, want)
        except Exception as exc:  # the grader's own failure: this task only, and the row says so
            RECORD.errors.append(f"scoring of {spec.key} failed: {type(exc).__name__}: {exc}"[:300])
            return scoring.failed(spec.key, "grader_error")

    def run_probe(self, spec, cases, index):
        """The kernel's results for ``cases``, or (None, why)."""
        if not probe_exchange.put_cases(self._workdir, cases):
            return None, "cases could not be written"
        if not self.run_grader_code(probe_exchange.probe_call(spec), index, "во время скрытых проверок"):
            return None, "no time left, or the kernel died"
        return probe_exchange.take_results(self._workdir, len(cases))
