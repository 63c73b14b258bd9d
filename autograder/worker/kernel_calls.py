"""Code the grader runs in a student's kernel: a call of a function from ``autograder/kernel/``.

RUNS IN A GRADING WORKER. The kernel imports nothing of the grader: the kernel-side
module's source goes along with the call, runs in a namespace of its own, and leaves no
name behind in the student's. The modules are real files (linters, coverage and readers
see them); only this one-line call is built as text.
"""
import functools
import pathlib

KERNEL_SIDE = pathlib.Path(__file__).resolve().parents[1] / "kernel"


@functools.lru_cache(maxsize=None)
def source(module):
    """The text of ``autograder/kernel/<module>.py``."""
    return (KERNEL_SIDE / f"{module}.py").read_text(encoding="utf-8")


def call(module, function, *args):
    """Kernel code that runs ``function(*args)`` of ``kernel/<module>.py`` (args: plain values)."""
    return (f"(lambda space: (exec(compile({source(module)!r}, {f'<grader: {module}>'!r}, 'exec'), space), "
            f"space[{function!r}](*{args!r}))[-1])({{'__name__': {f'grader_{module}'!r}}})\n")
