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

from .. import kit
from ..kernel.probe import PLAIN_DTYPES, TENSOR_KEYS, TEXT_KEYS

CASES_FILE = ".grader_cases.pt"
RESULTS_FILE = ".grader_results.pt"
MAX_RESULTS_BYTES = 64 * 2**20
MAX_TEXT = 2000  # the probe cuts its texts to 300 characters
PROBE_SOURCE = (pathlib.Path(__file__).parents[1] / "kernel" / "probe.py").read_text(encoding="utf-8")
# The kit's modules the probe and the diagnosis import, as (name, source): a kernel gets them
# fresh from the grader (never from the student's writable folder or its sys.modules).
PROBE_KIT = kit.sources("gpt_harness")
DIAGNOSIS_KIT = kit.sources("gpt_harness", "gpt_messages", "gpt_tasks")
# Kernel code is built by inserting repr()s once (source texts may hold "%" or "{}").
_INSTALL_KIT = """\
    import sys, types
    for name, text in kit:
        module = types.ModuleType(name)
        exec(compile(text, "<" + name + ">", "exec"), module.__dict__)
        sys.modules[name] = module
"""
PROBE_FUNCTION = f"""\
def __grader_probe(class_name, depends_on, kit, source):
    import torch
{_INSTALL_KIT}\
    space = {{"__name__": "grader_probe"}}
    exec(compile(source, "<probe>", "exec"), space)
    cases = torch.load({CASES_FILE!r}, weights_only=True)
    torch.save(space["run_cases"](class_name, depends_on, get_ipython().user_ns, cases), {RESULTS_FILE!r})
"""
DIAGNOSE_FUNCTION = f"""\
def __grader_diagnose(task, kit, source):
    import torch
{_INSTALL_KIT}\
    space = {{"__name__": "gpt_selfcheck"}}
    exec(compile(source, "<selfcheck>", "exec"), space)
    namespace = get_ipython().user_ns
    config = namespace.get("config")
    findings = space["diagnose"](task, namespace, config if isinstance(config, dict) else None)
    torch.save([{{k: str(v) for k, v in f.items()}} for f in findings], {RESULTS_FILE!r})
"""


def probe_call(spec):
    """Kernel code that probes the class of course task ``spec``."""
    return (PROBE_FUNCTION + f"__grader_probe({spec.cls!r}, {tuple(spec.depends_on)!r}, {PROBE_KIT!r}, "
            f"{PROBE_SOURCE!r})\n" "del __grader_probe\n")


def diagnose_call(spec):
    """Kernel code that runs the course's diagnosis (the kit's gpt_selfcheck.py) on the task's class."""
    return (DIAGNOSE_FUNCTION + f"__grader_diagnose({spec.key!r}, {DIAGNOSIS_KIT!r}, "
            f"{kit.source('gpt_selfcheck')!r})\n" "del __grader_diagnose\n")


def take_findings(workdir):
    """The diagnosis' findings from the kernel: a list of {str: str}, or []."""
    got, _ = take_results(workdir, None)
    if not isinstance(got, list):
        return []
    return [f for f in got[:20] if isinstance(f, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in f.items())]


def _open_up(folder):
    """Make ``folder`` writable by its owner, never through a link the kernel swapped in."""
    try:
        fd = os.open(folder, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)  # the folder opened above, whatever its name now
    except OSError:
        pass
    finally:
        os.close(fd)


def _writable_again(function, path, _):
    """rmtree's error handler: open up the folder that refused (the next pass removes it)."""
    _open_up(os.path.dirname(path))
    _open_up(path)


def remove(path):
    """Remove a file, a link or a folder the kernel may have planted at ``path``.

    Folders the kernel made read-only are opened up first; returns True when
    nothing is left at ``path``.
    """
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            _open_up(path)
            for _ in range(8):  # each pass opens up what refused it, one level deeper
                shutil.rmtree(path, onerror=_writable_again)
                if not os.path.lexists(path):
                    break
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:  # a file in a folder the kernel made read-only
        _open_up(os.path.dirname(os.path.abspath(path)))
        try:
            os.unlink(path)
        except OSError:
            pass
    except OSError:
        pass
    return not os.path.lexists(path)


def put_cases(workdir, cases):
    """Write ``cases`` where the kernel reads them; False if something blocks the name."""
    if not all([remove(workdir / RESULTS_FILE), remove(workdir / CASES_FILE)]):
        return False  # stale results could be read as this probe's
    partial = workdir / f".grader-{os.getpid()}-{time.monotonic_ns()}.tmp"
    try:
        torch.save(cases, partial)  # a fresh name: nothing planted there to follow
        os.replace(partial, workdir / CASES_FILE)
    except OSError:  # the folder made read-only, or something planted there again
        remove(partial)
        return False
    return True


def take_results(workdir, count):
    """The kernel's results (a list of ``count`` dicts, any length if None), or (None, why)."""
    path = workdir / RESULTS_FILE
    remove(workdir / CASES_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:  # none, or a link planted there (removed, never followed)
        remove(path)
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
