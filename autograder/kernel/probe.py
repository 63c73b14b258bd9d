"""Kernel side of the hidden checks: run a student's class on given inputs.

RUNS IN THE STUDENT'S KERNEL. Torch, the standard library and the kit's torch
helpers (``gpt_harness``: isolated torch state, seeding, stand-ins, building a
class with them) only: this file is sent, as source, into the (sandboxed) kernel
that executed the student's notebook, together with ``gpt_harness``'s source, and
must not import the autograder. It holds no reference solution, no expected value
and no course table (the class name and its dependencies come with each call): it
builds the student's class with *stand-ins* for the other course classes, loads the
weights it is given, runs ``forward`` in an isolated torch state and returns what
came out. Comparison with the reference happens in the grader, outside the kernel.
"""
import gpt_harness
import torch

# What one case's result holds (``run_case``): short texts under TEXT_KEYS, plain tensors of
# PLAIN_DTYPES under TENSOR_KEYS and "grad.<parameter>". The grader accepts nothing else.
TEXT_KEYS = ("error", "exception", "failed_in", "line")
TENSOR_KEYS = ("output", "logits", "loss", "loss_is_none", "loss_not_tensor", "generated")
PLAIN_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                torch.float16, torch.bfloat16, torch.float32, torch.float64)

build = gpt_harness.build
seed = gpt_harness.seed


def run_case(cls, depends_on, case):
    """Run one case in an isolated torch state; return a dict of plain tensors (never raises)."""
    with gpt_harness.isolated_torch():
        return _run_case(cls, depends_on, case)


def _run_case(cls, depends_on, case):
    result = {}
    stage = "__init__"
    try:
        module = build(cls, depends_on, case["config"], case["state_dict"], not case.get("own_deps"))
        module.train(case["train"])
        seed(case["seed"])
        inputs = case["input"].clone()
        if inputs.is_floating_point():
            inputs.requires_grad_(True)
        stage = "forward"
        if case.get("language_model"):
            if "targets" in case:
                out = module(inputs, case["targets"])
            else:
                out = module(inputs)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                result["error"] = "returns_not_pair"
                return result
            logits, loss = out
            if gpt_harness.swapped_pair(logits, loss):
                result["error"] = "returns_swapped"
                return result
            result["logits"] = _plain(logits)
            result["loss_is_none"] = torch.tensor(loss is None)
            if loss is not None and not torch.is_tensor(loss):  # a number (.item()): no backward
                result["loss_not_tensor"] = torch.tensor(True)
            elif loss is not None:
                result["loss"] = _plain(loss)
                if (case.get("backward") and torch.is_tensor(loss) and loss.requires_grad
                        and loss.numel() == 1):  # a non-scalar loss is graded, not a crash
                    loss.backward()
            if case.get("generate"):
                stage = "generate"
                seed(case["seed"])
                module.eval()
                with torch.no_grad():
                    result["generated"] = _plain(module.generate(inputs, case["generate"]))
        elif case.get("repeat"):
            with torch.no_grad():
                outs = []
                for i in range(case["repeat"]):
                    seed(case["seed"] + i)
                    outs.append(_plain(module(inputs)))
            result["output"] = torch.stack(outs)
        else:
            out = module(inputs)
            if out is None:
                result["error"] = "returns_none"
                return result
            result["output"] = _plain(out)
            if case.get("backward") and torch.is_tensor(out) and out.requires_grad:
                weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(case["seed"]))
                (out * weight.to(out.dtype)).sum().backward()
        if case.get("backward"):
            for name, param in module.named_parameters():
                if param.grad is not None:
                    result["grad." + name] = _plain_grad(param.grad)
            if inputs.is_floating_point() and inputs.grad is not None:
                result["grad.input"] = _plain_grad(inputs.grad)
    except Exception as exc:  # the student's code may raise anything
        if gpt_harness.unwritten(exc):
            result["error"] = "not_implemented"
            return result
        result["error"] = "exception"
        result["exception"] = f"{type(exc).__name__}: {exc}"[:300]
        result["failed_in"] = stage
        result["line"] = student_line(exc)
    return result


def student_line(exc):
    """'line N: code' of the innermost frame in the student's notebook code, or ''."""
    import linecache
    import traceback
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename or ""
        if "ipykernel" in name or name.startswith("<ipython-input") or name.startswith("<cell"):
            code = (frame.line or linecache.getline(name, frame.lineno) or "").strip()
            found = f"строка {frame.lineno}: {code}"[:200]
    return found


def _plain(value):
    """A dense CPU copy of a returned tensor; a TypeError (the student's) for anything else."""
    if not torch.is_tensor(value):
        raise TypeError(f"ожидался тензор, получено {type(value).__name__}")
    if value.is_nested or value.layout != torch.strided or value.dtype not in PLAIN_DTYPES:
        raise TypeError(f"ожидался обычный вещественный тензор, получен тензор {value.dtype}, {value.layout}")
    return value.detach().as_subclass(torch.Tensor).to("cpu").clone().contiguous()


def _plain_grad(grad):
    """A gradient as a plain tensor (sparse ones, e.g. of nn.Embedding(sparse=True), made dense)."""
    return _plain(grad.to_dense() if grad.layout != torch.strided else grad)


def run_cases(class_name, depends_on, namespace, cases):
    """Run every case against the class ``class_name`` found in ``namespace``."""
    cls = namespace.get(class_name)
    if not isinstance(cls, type):
        return [{"error": "class_missing"} for _ in cases]
    return [run_case(cls, tuple(depends_on), case) for case in cases]
