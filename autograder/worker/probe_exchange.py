"""How the probe's cases go into the kernel's folder and its results come back.

Only tensors cross: the grader writes the cases (secret inputs and weights)
under a fresh name and renames them into place; the kernel runs
``kernel/probe.py`` on them and saves plain dicts of tensors, which the grader
reads through a no-follow handle, size-capped, with ``weights_only=True``.
"""
import os
import pathlib
import shutil
import stat
import time

import torch

CASES_FILE = ".grader_cases.pt"
RESULTS_FILE = ".grader_results.pt"
MAX_RESULTS_BYTES = 64 * 2**20
PROBE_SOURCE = (pathlib.Path(__file__).parents[1] / "kernel" / "probe.py").read_text(encoding="utf-8")
PROBE_CALL = """\
def __grader_probe(class_name, depends_on, source=%r):
    import torch
    space = {"__name__": "grader_probe"}
    exec(compile(source, "<probe>", "exec"), space)
    cases = torch.load(%r, weights_only=True)
    torch.save(space["run_cases"](class_name, depends_on, get_ipython().user_ns, cases), %r)
__grader_probe(%%r, %%r)
del __grader_probe
""" % (PROBE_SOURCE, CASES_FILE, RESULTS_FILE)


def probe_call(spec):
    """Kernel code that probes the class of course task ``spec``."""
    return PROBE_CALL % (spec.cls, tuple(spec.depends_on))


def remove(path):
    """Remove a file, a link or a folder the kernel may have planted at ``path``."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def put_cases(workdir, cases):
    """Write ``cases`` where the kernel reads them; False if something blocks the name."""
    for name in (RESULTS_FILE, CASES_FILE):
        remove(workdir / name)
    partial = workdir / f".grader-{os.getpid()}-{time.monotonic_ns()}.tmp"
    torch.save(cases, partial)  # a fresh name: nothing planted there to follow
    try:
        os.replace(partial, workdir / CASES_FILE)
    except OSError:  # something planted there again
        remove(partial)
        return False
    return True


def take_results(workdir, count):
    """The kernel's results, or (None, why) when they are missing or malformed."""
    path = workdir / RESULTS_FILE
    remove(workdir / CASES_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return None, f"no results ({exc.strerror})"
    try:
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RESULTS_BYTES:
                return None, "results not a regular file or too big"
            got = torch.load(f, weights_only=True)
    except Exception as exc:  # planted or truncated by the kernel: its own task fails
        return None, f"unreadable results ({type(exc).__name__})"
    finally:
        remove(path)
    if not isinstance(got, list) or len(got) != count or not all(isinstance(g, dict) for g in got):
        return None, "malformed results"
    return got, ""
