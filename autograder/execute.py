"""nbgrader's Execute, with hidden checks that run outside the student's kernel.

For each autograded test cell only the visible asserts run in the kernel.
Then a generic probe (``probe.py``: no reference, no expected values) runs the
student's class on secret inputs and saves what came out; the grader loads it
(tensors only), compares with the reference here, and writes the verdict as
the cell's output in the form nbgrader scores: nothing for full points, a
number for partial credit, an error for none.
"""
import hashlib
import json
import os
import pathlib
import shutil

import torch
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from . import checks

HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
CASES_FILE = ".grader_cases.pt"
RESULTS_FILE = ".grader_results.pt"
MAX_RESULTS_BYTES = 64 * 2**20
TASK_OF_TESTS = {task + "_tests": task for task in checks.TASKS}
PROBE_SOURCE = (pathlib.Path(__file__).with_name("probe.py")).read_text(encoding="utf-8")
PROBE_CALL = """\
def __grader_probe(task, source=%r):
    import torch
    space = {"__name__": "grader_probe"}
    exec(compile(source, "<probe>", "exec"), space)
    cases = torch.load(%r, weights_only=True)
    torch.save(space["run_cases"](task, get_ipython().user_ns, cases), %r)
__grader_probe(%%r)
del __grader_probe
""" % (PROBE_SOURCE, CASES_FILE, RESULTS_FILE)


def case_seed(secret):
    """Deterministic for a course, unknown without the instructor's secret."""
    return int(hashlib.sha256(f"gpt-course:{secret}".encode()).hexdigest()[:12], 16)


def reference_results(task, secret, cache_dir=""):
    """(cases, reference outputs) for ``task``, cached in ``cache_dir``."""
    cases = checks.make_cases(task, case_seed(secret))
    if not cache_dir:
        return cases, checks.run_reference(task, cases)
    path = pathlib.Path(cache_dir) / f"{task}.pt"
    if path.is_file():
        return cases, torch.load(path, weights_only=True)
    want = checks.run_reference(task, cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(want, partial)
    os.replace(partial, path)
    return cases, want


def visible_part(source):
    return source.split(HIDDEN_MARK, 1)[0].rstrip()


def verdict_outputs(verdict, visible):
    """Cell outputs that make nbgrader record ``verdict.points``."""
    notes = []
    for out in visible:
        if out.get("output_type") == "error":
            notes.append(f"Видимые тесты: {out.get('ename')}: {out.get('evalue')}")
    text = "\n".join(notes + [verdict.message]) + "\n"
    if verdict.points <= 0:
        return [NotebookNode(output_type="error", ename="AssertionError",
                             evalue=verdict.message, traceback=text.rstrip("\n").split("\n"))]
    outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
    if verdict.points < verdict.max_points:
        outputs.append(NotebookNode(output_type="execute_result", execution_count=None,
                                    metadata={}, data={"text/plain": f"{verdict.points:g}"}))
    return outputs


class ProbingExecute(Execute):
    """Execute whose hidden checks compare outside the kernel."""

    secret = Unicode("", help="Instructor's secret for the hidden inputs.").tag(config=True)
    student = Unicode("", help="Student id (seeds the hidden inputs).").tag(config=True)
    probe_timeout = Integer(120, help="Seconds for one probe.").tag(config=True)
    reference_dir = Unicode("", help="Cache of the reference outputs (outside the kernel's reach).").tag(config=True)
    siblings = Unicode("", help="Folder of the student's other notebooks, which later steps import.").tag(config=True)
    verdict_file = Unicode("", help="JSON file collecting verdicts (outside the kernel's reach).").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self.student = self.student or resources.get("nbgrader", {}).get("student", "")
        self._workdir = pathlib.Path(resources.get("metadata", {}).get("path") or ".")
        if self.siblings:
            for path in pathlib.Path(self.siblings).glob("*.ipynb"):
                if not (self._workdir / path.name).exists():
                    shutil.copy(path, self._workdir / path.name)
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        task = TASK_OF_TESTS.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or task is None:
            return super().preprocess_cell(cell, resources, index)
        full = cell.source
        cell.source = visible_part(full)
        try:
            super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = full
        verdict = self.hidden_verdict(task, index)
        self.nb.cells[index] = cell  # nbclient stores the probe cell in this slot
        cell.outputs = verdict_outputs(verdict, cell.outputs)
        self.save_verdict(verdict)
        return cell, resources

    def save_verdict(self, verdict):
        if not self.verdict_file:
            return
        path = pathlib.Path(self.verdict_file)
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        saved[verdict.task] = {"points": verdict.points, "mistakes": verdict.mistakes,
                               "passed": verdict.passed}
        path.write_text(json.dumps(saved, ensure_ascii=False, indent=1), encoding="utf-8")

    def hidden_verdict(self, task, index):
        cases, want = reference_results(task, self.secret, self.reference_dir)
        got = self.run_probe(task, cases, index)
        if got is None:
            return checks.Verdict(task, 0.0, checks.POINTS[task], [(
                "probe_failed", "скрытые проверки не смогли выполниться: ядро упало, "
                                "превышено время или память, или код меняет окружение")], [])
        return checks.grade(task, cases, got, want)

    def run_probe(self, task, cases, index):
        cases_path = self._workdir / CASES_FILE
        results_path = self._workdir / RESULTS_FILE
        results_path.unlink(missing_ok=True)
        torch.save(cases, cases_path)
        probe_cell = NotebookNode(cell_type="code", source=PROBE_CALL % task, metadata={},
                                  outputs=[], execution_count=None)
        saved_timeout = self.timeout
        try:
            self.timeout = self.probe_timeout
            self.execute_cell(probe_cell, index, store_history=False)
        except Exception:  # dead kernel, timeout: the verdict says so
            return None
        finally:
            self.timeout = saved_timeout
            cases_path.unlink(missing_ok=True)
        try:
            if not results_path.is_file() or results_path.stat().st_size > MAX_RESULTS_BYTES:
                return None
            got = torch.load(results_path, weights_only=True)
        except Exception:
            return None
        finally:
            results_path.unlink(missing_ok=True)
        if not isinstance(got, list) or len(got) != len(cases) or not all(isinstance(g, dict) for g in got):
            return None
        return got
