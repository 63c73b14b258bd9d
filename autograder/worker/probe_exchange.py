"""How the probe's cases go into the kernel's folder and its results come back.

Only tensors cross: the grader writes the cases (secret inputs and weights)
under a fresh name and renames them into place; the kernel runs
``kernel/probe.py`` on them and saves plain dicts of tensors, which the grader
reads through a no-follow, non-blocking handle, size-capped, with
``weights_only=True`` (``kernel_folders``: every step through descriptors).
"""
import os
import time

import torch

from .. import kit
from ..kernel.probe import PLAIN_DTYPES, TENSOR_KEYS, TEXT_KEYS
from . import kernel_calls, kernel_folders

CASES_FILE = ".grader_cases.pt"
RESULTS_FILE = ".grader_results.pt"
MAX_RESULTS_BYTES = 64 * 2**20
MAX_TEXT = 2000  # the probe cuts its texts to 300 characters
# The kit's modules the probe and the diagnosis import, as (name, source): a kernel gets them
# fresh from the grader (never from the student's writable folder or its sys.modules).
PROBE_KIT = kit.sources("gpt_harness")
DIAGNOSIS_KIT = kit.sources("gpt_harness", "gpt_messages", "gpt_tasks")


def probe_call(spec):
    """Kernel code that probes the class of course task ``spec`` (kernel/entry.py)."""
    return kernel_calls.call("entry", "probe", spec.cls, tuple(spec.depends_on), PROBE_KIT,
                             kernel_calls.source("probe"), CASES_FILE, RESULTS_FILE)


def diagnose_call(spec):
    """Kernel code that runs the course's diagnosis (the kit's gpt_selfcheck.py) on the task's class."""
    return kernel_calls.call("entry", "diagnose", spec.key, DIAGNOSIS_KIT, kit.source("gpt_selfcheck"),
                             RESULTS_FILE)


def take_findings(workdir):
    """The diagnosis' findings from the kernel: a list of {str: str}, or []."""
    got, _ = take_results(workdir, None)
    if not isinstance(got, list):
        return []
    return [f for f in got[:20] if isinstance(f, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in f.items())]


def remove(path):
    """Remove a file, a link or a folder the kernel may have planted at ``path`` (nothing
    followed, folders it made read-only opened up on their descriptors); True when
    nothing is left at ``path``."""
    return kernel_folders.remove(path)


def put_cases(workdir, cases):
    """Write ``cases`` where the kernel reads them; False if something blocks the name."""
    try:
        with kernel_folders.folder(workdir) as fd:
            if not (kernel_folders.remove_at(fd, RESULTS_FILE) and kernel_folders.remove_at(fd, CASES_FILE)):
                return False  # stale results could be read as this probe's
            partial = f".grader-{os.getpid()}-{time.monotonic_ns()}.tmp"
            try:
                with kernel_folders.create(fd, partial) as f:  # a new file: nothing planted to follow
                    torch.save(cases, f)
                os.replace(partial, CASES_FILE, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError:  # the folder made read-only, or something planted there again
                kernel_folders.remove_at(fd, partial)
                return False
    except OSError:  # the kernel's folder itself is gone
        return False
    return True


def take_results(workdir, count):
    """The kernel's results (a list of ``count`` dicts, any length if None), or (None, why)."""
    try:
        with kernel_folders.folder(workdir) as fd:
            kernel_folders.remove_at(fd, CASES_FILE)
            f = kernel_folders.open_regular(fd, RESULTS_FILE, MAX_RESULTS_BYTES)
            try:
                if f is None:  # none, or a link, FIFO or folder planted there (removed, never opened)
                    return None, "no results, or not a regular file within the size limit"
                with f:
                    got = torch.load(f, weights_only=True)
            except Exception as exc:  # planted or truncated by the kernel: its own task fails
                return None, f"unreadable results ({type(exc).__name__})"
            finally:
                kernel_folders.remove_at(fd, RESULTS_FILE)
    except OSError as exc:
        return None, f"the kernel's folder cannot be opened ({exc.strerror})"
    if not isinstance(got, list) or (count is not None and len(got) != count):
        return None, "malformed results"
    if count is not None and not all(valid_result(g) for g in got):
        return None, "malformed results"
    return got, ""


def plain_tensor(value):
    """A dense CPU tensor of a real or integer dtype (what the probe saves)."""
    return (type(value) is torch.Tensor and value.layout == torch.strided and value.device.type == "cpu"
            and value.dtype in PLAIN_DTYPES and not value.requires_grad)


def valid_result(result):
    """True for a dict the probe could have written for one case: known keys, right types."""
    if not isinstance(result, dict):
        return False
    for key, value in result.items():
        if not isinstance(key, str):
            return False
        if key in TEXT_KEYS:
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                return False
        elif key in TENSOR_KEYS or key.startswith("grad."):
            if not plain_tensor(value):
                return False
        else:
            return False
    return True
