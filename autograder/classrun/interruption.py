"""Ctrl+C during a grading run (main process): the run stops at the latest after the next student.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT comes, and a library
may swallow it there: SQLAlchemy's pool logs and drops what is raised while it closes a connection,
a weakref callback's exception is printed and ignored (about one interrupt in a hundred, sent at a
random moment of a student's gradebook merge). A Dask run under load once merged every student
after an interrupt and ended 0. ``watch`` remembers the signal too, and the run asks after each
student it merges.
"""
import contextlib
import signal
import threading


@contextlib.contextmanager
def watch():
    """Within: SIGINT raises ``KeyboardInterrupt``, as by default, and is remembered; yields a
    function that says whether it came. Outside the main thread, where Python delivers no signal,
    the function always says no."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    came = []

    def on_sigint(signum, frame):
        came.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(came)
    finally:
        signal.signal(signal.SIGINT, previous)
