"""Measured figures of the student's path: each notebook's Run All time, and what checking earlier steps costs.

    python tools/measure_student_path.py runall [--max-iters N]   # every notebook of a solved kit, fresh kernels
    python tools/measure_student_path.py checks [--repeat R]      # import_notebook's diagnosis, per step

``runall`` unpacks the kit (release/gpt) into a temporary folder, pastes the reference
solutions, and runs each notebook in a fresh kernel as Run All does (nbclient), one at
a time, printing the wall seconds (kernel start and imports included). Without
``--max-iters`` the notebooks run as a student runs them (06 trains 5000 steps).

``checks`` runs, in one process with one torch thread, what a later notebook's import
costs: the diagnosis (``gpt_selfcheck.diagnose``) of each earlier step's class, on the
reference solutions and on a wrong one per step, and the total for the chain that
``06_training`` imports (every step).
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def solved_kit(folder, change=None):
    from kit import solved_kit as make, paste, reference_body
    kit = make(folder)
    for task, edit in (change or {}).items():
        paste(kit, task, edit(reference_body(task)))
    return kit


def _cell_seconds(cell):
    """Wall seconds of one executed cell, from the timing nbclient records."""
    from datetime import datetime
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))   # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def runall(max_iters=None, only=None):
    import nbformat
    from nbclient import NotebookClient
    from autograder import course
    with tempfile.TemporaryDirectory() as tmp:
        kit = solved_kit(pathlib.Path(tmp) / "kit")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPT_COURSE_DATA", "GPT_MAX_ITERS")}
        env["MPLBACKEND"] = "Agg"
        if max_iters:
            env["GPT_MAX_ITERS"] = str(max_iters)
        print(f"Run All of each notebook, fresh kernel ({os.cpu_count()} CPUs"
              f"{', GPT_MAX_ITERS=' + str(max_iters) if max_iters else ''}):")
        total = 0.0
        for name in [*course.NOTEBOOKS, "attention_basics"]:
            if only and name not in only:
                continue
            nb = nbformat.read(str(kit / f"{name}.ipynb"), as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=3600, kernel_name="python3", shutdown_kernel="immediate",
                           resources={"metadata": {"path": str(kit)}}).execute(env=env)
            seconds = time.perf_counter() - start
            total += seconds
            print(f"  {name:24s} {seconds:7.1f} s", flush=True)
            slow = [(c.source.strip().split("\n")[0][:50], _cell_seconds(c)) for c in nb.cells if c.cell_type == "code"]
            for first_line, cell_seconds in slow:
                if cell_seconds is not None and cell_seconds >= 5:
                    print(f"      {cell_seconds:7.1f} s  {first_line}", flush=True)
        print(f"  {'all':24s} {total:7.1f} s")


CHECKS = r"""
import json, os, statistics, sys, time
sys.path.insert(0, os.getcwd())
import torch
torch.set_num_threads(1)
import gpt_course, gpt_selfcheck
cls_of = gpt_selfcheck.CLASS_OF_TASK
notebook_of = gpt_selfcheck.NOTEBOOK_OF_TASK
gpt_course.CHECK_EARLIER_STEPS = False
spaces = {}
for task in gpt_selfcheck.TASKS:
    gpt_course.import_notebook(notebook_of[task] + '.ipynb', cls_of[task])
    entry = next(e for k, e in gpt_course._CACHE.items() if k[0].name == notebook_of[task] + '.ipynb')
    spaces[task] = entry["namespace"]
result = {}
for task, namespace in spaces.items():
    times = []
    for _ in range(int(sys.argv[1])):
        start = time.perf_counter()
        findings = gpt_selfcheck.diagnose(task, namespace, namespace.get("config"))
        times.append(time.perf_counter() - start)
    result[task] = [statistics.median(times), [f["key"] for f in findings]]
# the whole chain as 06 imports it, in a fresh cache: every class checked once (cells run again too)
gpt_course.CHECK_EARLIER_STEPS = True
gpt_course._CACHE.clear()
start = time.perf_counter()
try:
    gpt_course.import_notebook('05_gpt_model.ipynb', 'GPTModel')
except gpt_course.EarlierStepError:   # a wrong step stops the chain there, as in a notebook
    pass
result["chain"] = time.perf_counter() - start
print(json.dumps(result))
"""


def checks(repeat=5):
    import json
    head = lambda b: b.replace("self.tril[:T, :T]", "self.tril")                       # noqa: E731
    wrong = {"head": ("маска не обрезана", head),
             "multihead": ("нет проекции", lambda b: b.replace("self.proj(out)", "out")),
             "feedforward": ("нет dropout", lambda b: "return self.net[2](self.net[1](self.net[0](x)))\n"),
             "block": ("pre-norm", lambda b: "x = x + self.sa(self.ln1(x))\nx = x + self.ffwd(self.ln2(x))\n"),
             "gpt_model": ("нет ln_f", lambda b: b.replace("x = self.ln_f(x)\n", ""))}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPT_COURSE_DATA")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"верные решения": solved_kit(pathlib.Path(tmp) / "right")}
        for task, (label, edit) in wrong.items():
            runs[f"{task}: {label}"] = solved_kit(pathlib.Path(tmp) / task, {task: edit})
        print(f"gpt_selfcheck.diagnose per step, median of {repeat}, one torch thread ({os.cpu_count()} CPUs):")
        for label, kit in runs.items():
            done = subprocess.run([sys.executable, "-c", CHECKS, str(repeat)], cwd=kit, env=env,
                                  capture_output=True, text=True)
            if done.returncode:
                print(f"  {label}: failed: {done.stderr[-500:]}")
                continue
            result = json.loads(done.stdout)
            per_task = "  ".join(f"{task} {seconds * 1000:.0f} ms" for task, (seconds, _) in
                                 ((t, v) for t, v in result.items() if t != "chain"))
            print(f"  {label:28s} {per_task}  | import of 05 (all steps, first time): {result['chain']:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["runall", "checks"])
    parser.add_argument("--max-iters", type=int)
    parser.add_argument("--only", nargs="*", help="runall: these notebooks only (names without .ipynb)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runall(args.max_iters, args.only) if args.what == "runall" else checks(args.repeat)
