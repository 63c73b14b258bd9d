"""The hidden checks of one task, run against the student's class in its kernel.

RUNS IN A GRADING WORKER. The generic probe (``kernel/probe.py``: no reference, no expected
values) runs the class on secret cases in the kernel and saves what came out
(``probe_exchange``); the grader compares it with the reference here (``checks.scoring``).
A class that fails with stand-ins for its parts is probed again with its own parts
(``scoring.best_verdict``); a task that lost points gets the course's diagnosis. All of it
shares one time budget: a class that stalls only when probed costs that once per task.
"""
import dataclasses
import time

from ..checks import cases as checks_cases, reference, scoring
from ..diagnosis import russian_text
from ..notebooks import find_cell
from . import probe_exchange


@dataclasses.dataclass
class KernelRun:
    """How grader code ran in the kernel."""

    ran: bool          # it ran to its end (maybe with an exception, below)
    stopped: str = ""  # why it did not: a record event kind (memory, disk, kernel_died) or "no_time"
    error: str = ""    # the exception the code ended with ("SystemExit: 0"), if any


# What the kernel did when the probe gave no results, named as what it was.
STOPPED = {"no_time": "probe_timeout", "memory": "probe_memory", "disk": "probe_disk",
           "kernel_died": "probe_kernel_died", "timeout": "probe_timeout"}
ENDED_WITH = {"SystemExit": "probe_exit", "KeyboardInterrupt": "probe_timeout", "CellTimeoutError": "probe_timeout"}


class HiddenChecks:
    """The checks of task ``spec``; ``run_in_kernel(code, timeout_s, during)`` runs grader code
    in the kernel and says how (a KernelRun; a death is recorded by it)."""

    def __init__(self, spec, workdir, settings, run_in_kernel, record, log):
        self.spec, self.workdir, self.settings = spec, workdir, settings
        self.run_in_kernel, self.record, self.log = run_in_kernel, record, log
        self.deadline = None
        self.kernel_died = False

    def verdict(self):
        """The task's result (``results.TaskResult``) within ``settings.probe_timeout`` seconds."""
        self.deadline = time.monotonic() + self.settings.probe_timeout
        verdict = scoring.best_verdict(self.spec.key, lambda own_deps: None if own_deps and self.kernel_died
                                       else self.probed_verdict(own_deps))
        if verdict.points < verdict.max_points and not self.kernel_died \
                and not scoring.FINAL & set(verdict.mistake_keys):
            verdict = scoring.with_diagnosis(verdict, self.diagnosis())
        return verdict

    def run(self, code, during):
        """Run ``code`` in the kernel within what is left of the budget (a KernelRun)."""
        left = self.deadline - time.monotonic()
        if left < 1:
            self.log.warning("no time left for the hidden checks (%s)", during)
            return KernelRun(False, "no_time")
        run = self.run_in_kernel(code, int(left), during)
        self.kernel_died = self.kernel_died or not run.ran
        return run

    def probed_verdict(self, own_deps):
        spec, seed = self.spec, checks_cases.case_seed(self.settings.secret)
        cases = checks_cases.make_cases(spec.key, seed, own_deps)
        want = reference.cached_outputs(spec.key, cases, self.settings.reference_dir,
                                        reference.cache_key(seed, self.settings.fingerprint))
        got, why, detail = self.probe(cases)
        if got is None:
            self.log.warning("probe of %s failed: %s %s", spec.key, why, detail)
            return scoring.failed(spec.key, why, detail)
        try:
            return scoring.grade(spec.key, cases, got, want)
        except Exception as exc:  # the grader's own failure: this task only, and the row says so  # noqa: BLE001
            self.record.errors.append(f"scoring of {spec.key} failed: {type(exc).__name__}: {exc}"[:300])
            return scoring.failed(spec.key, "grader_error")

    def probe(self, cases):
        """(the kernel's results for ``cases``, "", ""), or (None, the mistake key naming what the
        kernel did instead, a detail)."""
        if not probe_exchange.put_cases(self.workdir, cases):
            return None, "probe_tampered", ""
        run = self.run(probe_exchange.probe_call(self.spec), "во время скрытых проверок")
        if not run.ran:
            return None, STOPPED.get(run.stopped, "probe_kernel_died"), ""
        got, why = probe_exchange.take_results(self.workdir, len(cases))
        if got is not None:
            return got, "", ""
        if why != probe_exchange.MISSING:
            return None, "probe_tampered", ""
        key = ENDED_WITH.get(run.error.split(":", 1)[0], "probe_no_results")
        return None, key, "" if key == "probe_timeout" else run.error

    def diagnosis(self):
        """What the course's diagnosis observes of the task's class in the kernel ([] if nothing)."""
        probe_exchange.remove(self.workdir / probe_exchange.RESULTS_FILE)
        if not self.run(probe_exchange.diagnose_call(self.spec), "во время диагностики").ran:
            return []
        return probe_exchange.take_findings(self.workdir)


def failed_solution(nb, spec):
    """0 points naming the error of task ``spec``'s solution cell in ``nb``, when that cell failed
    (its class was never defined: «from my_model import Head», a syntax error); else None."""
    try:
        cell = find_cell(nb, spec.solution_id)
    except KeyError:  # no solution cell: the probe names the class missing
        return None
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    error = errors[-1]
    return scoring.failed(spec.key, "solution_failed",
                          russian_text(f"{error.get('ename')}: {error.get('evalue')}")[:300])
