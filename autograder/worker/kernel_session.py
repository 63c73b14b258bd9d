"""One student's kernel, kept from one notebook to the next.

RUNS IN A GRADING WORKER. Starting a kernel costs a kernel start and ``import torch``;
a student's notebooks run one after another in one kernel, its namespace reset between
them (``kernel/between_notebooks.py``). A kernel that died, or that its sandbox's watchdog
killed after its notebook ended (a thread still allocating, files still growing), is
replaced, and a limit it hit is recorded for the notebook it last ran.
"""
import zmq
from jupyter_core.utils import run_sync

from . import kernel_calls
from .record import stop_event

# What a student's kernel can do to a notebook's run (die, wedge, fail to start); anything
# else raised there is the grader's own failure and reaches the worker's error record.
KERNEL_TROUBLE = (RuntimeError, TimeoutError, OSError, zmq.ZMQError)


class KernelSession:
    """The kernel of one student's run (``reuse=False``: nbclient starts one per notebook)."""

    def __init__(self, record, reuse=True):
        self.record, self.reuse = record, reuse
        self.km = None
        self.notebook = None  # the notebook the kernel runs, or ran last
        self.ran_before = False  # the kernel ran an earlier notebook: reset it first

    def manager(self, notebook, new_manager):
        """The manager of the kernel ``notebook`` runs in (``new_manager()`` makes one), or None
        when nbclient should start and stop a kernel of its own."""
        if not self.reuse:
            return None
        if self.km is not None and not (self.km.has_kernel and run_sync(self.km.is_alive)()):
            self.shut_down()
        self.ran_before = self.km is not None
        if self.km is None:
            self.km = new_manager()
        self.notebook = notebook
        return self.km

    def reset_code(self, folder):
        """Kernel code that readies a kernel that ran another notebook for this one."""
        return kernel_calls.call("between_notebooks", "reset_for_next_notebook", str(folder))

    @staticmethod
    def setup_code():
        """Kernel code that readies a new kernel (it starts in its notebook's folder)."""
        return kernel_calls.call("fresh_kernel", "skip_stored_tracebacks")

    def shut_down(self):
        """Stop the kernel, if any; a limit it hit after its last notebook ended is recorded there."""
        km, notebook, self.km, self.notebook = self.km, self.notebook, None, None
        if km is None:
            return
        if notebook and (getattr(km, "memory_exceeded", False) or getattr(km, "disk_exceeded", False)):
            self.record.event(notebook, *stop_event(km))
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except KERNEL_TROUBLE:  # a kernel killed for a limit can't be asked: just clean up
            for step in (km._async_kill_kernel, km._async_cleanup_resources):
                try:
                    run_sync(step)()
                except KERNEL_TROUBLE:  # nothing left to stop
                    pass
