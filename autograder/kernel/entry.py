"""The grader's two calls into a student's kernel: probe a class, diagnose a class.

RUNS IN THE STUDENT'S KERNEL, sent as source with each call (worker/kernel_calls.py);
torch and the standard library only. The kit's modules they use (``kit``: (name,
source) pairs) are installed fresh from the grader's copy, never read from the student's
writable folder or taken from its ``sys.modules``. Results go to a file the grader reads
through a no-follow handle (worker/probe_exchange.py): only tensors and short texts cross.
"""
import sys
import types

import torch


def install_kit(kit):
    for name, text in kit:
        module = types.ModuleType(name)
        exec(compile(text, f"<{name}>", "exec"), module.__dict__)
        sys.modules[name] = module


def _namespace():
    return get_ipython().user_ns  # noqa: F821  (IPython's, in the kernel)


def probe(class_name, depends_on, kit, probe_source, cases_file, results_file):
    """Run the probe (kernel/probe.py) on the cases in ``cases_file``; save what came out."""
    install_kit(kit)
    space = {"__name__": "grader_probe"}
    exec(compile(probe_source, "<probe>", "exec"), space)
    cases = torch.load(cases_file, weights_only=True)
    torch.save(space["run_cases"](class_name, depends_on, _namespace(), cases), results_file)


def diagnose(task, kit, selfcheck_source, results_file):
    """Run the course's diagnosis (the kit's gpt_selfcheck.py) on the task's class; save its findings."""
    install_kit(kit)
    space = {"__name__": "gpt_selfcheck"}
    exec(compile(selfcheck_source, "<selfcheck>", "exec"), space)
    namespace = _namespace()
    config = namespace.get("config")
    findings = space["diagnose"](task, namespace, config if isinstance(config, dict) else None)
    torch.save([{k: str(v) for k, v in f.items()} for f in findings], results_file)
