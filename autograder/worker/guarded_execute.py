"""nbgrader's Execute step, with what a student's kernel sends treated as untrusted input.

RUNS IN A GRADING WORKER. The kernel can send anything: a widget ``comm_open`` without
``state``, ``data`` that is not a dict, text with lone surrogates no file can hold, a
forged ``execute_reply``, floods of output, messages of hundreds of megabytes. Stock
nbclient or nbformat would raise, and nbgrader would drop every notebook of the student,
or the grader would buffer all of it. Here a malformed message is dropped and noted, a
reply breaking the protocol fails its cell only, output is capped as it arrives, and the
kernel client (kernel_client.py) drops oversized messages before they are buffered.
Subclasses provide ``record`` (record.py), ``notebook`` and ``cap`` (cell_outputs.OutputCap).
"""
from nbclient.exceptions import CellControlSignal, CellExecutionComplete, DeadKernelError
from nbgrader.preprocessors import Execute
from jupyter_core.utils import ensure_async, run_sync
from traitlets import Bool, Integer

from .cell_outputs import error_output, note_output, writable_text
from .kernel_client import BoundedKernelClient
from .kernel_session import KERNEL_TROUBLE


class GuardedExecute(Execute):
    max_output_bytes = Integer(2 * 2**20, help="Output kept per notebook; the rest is dropped "
                                               "as it arrives, with a note.").tag(config=True)
    raise_on_iopub_timeout = Bool(False, help="A cell whose last messages never came (a message over "
                                  "the client's size limit drops its connection) ends after iopub_timeout; "
                                  "the notebook goes on.").tag(config=True)

    def process_message(self, msg, cell, cell_index):
        """nbclient's handling, except that a malformed message (a widget ``comm_open`` without
        ``state``, ``data`` that is not a dict, lone surrogates no file can hold) is dropped and
        noted: nbclient or nbformat would raise, and nbgrader would drop every notebook."""
        try:
            msg["content"] = writable_text(msg["content"])
            return super().process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            raise
        except Exception as exc:  # noqa: BLE001  (anything the kernel sent: noted, not raised)
            self.log.warning("malformed kernel message dropped: %s: %s", type(exc).__name__, exc)
            self.record.event(self.notebook, "bad_message",
                              f"сообщение ядра не по протоколу пропущено ({msg.get('msg_type', '?')})")
            return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        """nbclient's execution, except that a reply breaking the protocol (a forged
        ``execute_reply``, headers that are not dicts) fails this cell only."""
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (CellControlSignal, DeadKernelError):
            raise
        except Exception as exc:  # noqa: BLE001  (the kernel's doing: this cell fails, noted)
            self.log.warning("kernel broke the protocol: %s: %s", type(exc).__name__, exc)
            self.record.event(self.notebook, "bad_message", f"ответ ядра не по протоколу ({type(exc).__name__})")
            cell.setdefault("outputs", []).append(error_output(
                "KernelProtocolError", "ядро прислало ответ не по протоколу: ячейка не засчитана"))
            return cell
        dropped = getattr(self.kc, "dropped", lambda: 0)()
        # an oversized message (once per notebook); a kernel that died drops its connections too
        if dropped and self.km is not None and await ensure_async(self.km.is_alive()):
            limit = BoundedKernelClient.max_message_bytes.default_value // 2**20
            if not self.record.has_event(self.notebook, "output_cut"):
                cell.setdefault("outputs", []).append(note_output(
                    f"[вывод обрезан: сообщение ядра больше {limit} МиБ пропущено]"))
            self.record.event(self.notebook, "output_cut", f"сообщение ядра больше {limit} МиБ пропущено")
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def async_start_new_kernel_client(self):
        """nbclient's, with a bounded client, and any failure made kernel trouble: a thread the
        student left running in a reused kernel can forge the ``kernel_info_reply``."""
        if self.km is not None:
            self.km.client_factory = BoundedKernelClient
        try:
            return await super().async_start_new_kernel_client()
        except KERNEL_TROUBLE:
            raise
        except Exception as exc:  # noqa: BLE001  (re-raised as the kernel's trouble)
            raise RuntimeError(f"kernel client did not start: {type(exc).__name__}: {exc}") from exc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's, capped while the output arrives, not after."""
        if not self.cap.take(msg.get("content", {})):
            note = self.cap.note()
            if note is not None:
                self.record.event(self.notebook, "output_cut", f"вывод больше {self.max_output_bytes // 2**20} МиБ обрезан")
                outs.append(note)
            return None
        return super().output(outs, msg, display_id, cell_index)

    async def _async_handle_timeout(self, timeout, cell=None):
        self.record.event(self.notebook, "timeout", f"ячейка дольше {timeout} с")
        return await super()._async_handle_timeout(timeout, cell)
