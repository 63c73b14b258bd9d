"""Run in a reused kernel before its next notebook (RUNS IN THE STUDENT'S KERNEL, sent as source).

The namespace is reset and the kernel moves to the notebook's folder. What survives the
reset (torch, IPython, the modules imported) is frozen for the garbage collector: later
resets and its full passes skip it (a full pass over torch's objects takes ~70 ms; four
resets a student).
"""
import gc
import os


def reset_for_next_notebook(folder):
    get_ipython().reset(new_session=False)  # noqa: F821  (IPython's, in the kernel)
    gc.freeze()
    os.chdir(folder)
