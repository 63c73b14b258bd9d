"""Grading on a Dask cluster (main process): ``DaskExecutor``, the executor of ``grade --dask``.

Each student is one Dask task (``remote.grade``) that carries the staged
submission as bytes and returns the outcome as data: no file system is shared
with the workers. The run's other inputs (the gradebook template, a sample of
the reference outputs, the secret) reach each worker once, with its admission
(admission.py), which every worker passes before it gets a student.

Nothing lost, nothing twice: a task whose worker dies is run again elsewhere by
Dask (up to ``distributed.scheduler.allowed-failures`` deaths, then the
student's row says so); each student's future is yielded once; at most
``WINDOW_PER_WORKER`` students per admitted worker are handed to the scheduler
at a time, so newcomers share the work and no class-sized graph is sent. With
no admitted worker for ``wait`` seconds the run stops with ``ClusterProblem``:
the students merged so far are kept (grade.py), a re-run grades the rest.
"""
import collections
import dataclasses
import io
import secrets
import sys
import time

import torch

from ..checks import cases as checks_cases, reference
from ..results import StudentResult
from . import admission, outcome, remote, staging
from .gradebook import worker_template

CONNECT_TIMEOUT_S = 10
POLL_S = 1.0
WINDOW_PER_WORKER = 2
DEFAULT_WAIT_S = 600


class ClusterProblem(RuntimeError):
    """The cluster cannot grade this run; the message (Russian) says why and what to do."""


def log(message):
    print(message, file=sys.stderr, flush=True)


def connect(address):
    """A client of the scheduler at ``address``, or ``ClusterProblem`` naming why not."""
    from distributed import Client
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:  # a refused or silent port, a name that does not resolve, a bad URL
        raise ClusterProblem(f"планировщик Dask {address} не отвечает ({type(exc).__name__}: "
                             f"{str(exc).strip()[:200]}): проверьте адрес (--dask или "
                             "c.Autograder.dask в nbgrader_config.py) и что `dask scheduler` запущен") from None


def problem(address):
    """Why the grade command cannot use the scheduler at ``address`` (Russian), or None."""
    try:
        connect(address).close()
    except ClusterProblem as exc:
        return str(exc)
    return None


def reference_sample(course, secret, grader_fingerprint):
    """{file: bytes}: the first case of each reference output file of the run (grade.cache_references)."""
    key = reference.cache_key(checks_cases.case_seed(secret), grader_fingerprint)
    sample = {}
    for path in sorted((course / "reference").glob(f"*-{key}*.pt")):
        buffer = io.BytesIO()
        torch.save(torch.load(path, weights_only=True)[:1], buffer)
        sample[path.name] = buffer.getvalue()
    return sample


class DaskExecutor:
    """The executor (executor.py) that grades on the workers of the Dask cluster at ``address``."""

    def __init__(self, address, wait=DEFAULT_WAIT_S, log=log):
        self.address, self.wait, self.log = address, wait, log
        self.client = connect(address)
        self.description = f"Dask {address}"
        self._futures = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self._futures:  # a run left early: what is still queued is not wanted
            self.client.cancel(list(self._futures))
            self._futures.clear()
        self.client.close()

    def _run(self, course, settings):
        token = secrets.token_hex(4)
        key = f"{settings.grader_fingerprint[:8]}{settings.course_fingerprint[:8]}-{token}"
        return {"key": key, "secret": settings.secret, "sandbox": settings.sandbox,
                "grader": settings.grader_fingerprint, "course": settings.course_fingerprint,
                "template": worker_template(course).read_bytes(),
                "reference_sample": reference_sample(course, settings.secret, settings.grader_fingerprint)}

    def grade(self, course, student_ids, settings):
        """Yield (student id, Outcome) as the cluster's workers finish (executor.py)."""
        from distributed import wait
        run = self._run(course, settings)
        gate = admission.Gate(self.client, run, self.log)
        wire_settings = dataclasses.asdict(settings)
        queue = collections.deque(enumerate(student_ids))
        futures = self._futures
        self.log(f"Dask {self.address}: ожидание рабочих, допущенных к проверке")
        alone_since = time.monotonic()
        while queue or futures:
            gate.poll()
            if gate.admitted:
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > self.wait:
                raise ClusterProblem(self._no_workers(gate, len(queue) + len(futures)))
            while queue and len(futures) < WINDOW_PER_WORKER * len(gate.admitted):
                index, sid = queue.popleft()
                future = self.client.submit(
                    remote.grade, run["key"], sid, staging.submission_files(course, sid), wire_settings,
                    key=f"grade-{run['key']}-{index}", resources=gate.resources, pure=False)
                futures[future] = sid
            if not futures:
                time.sleep(POLL_S)
                continue
            try:
                with self.client.as_current():
                    done = wait(list(futures), timeout=POLL_S, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for future in done:
                sid = futures.pop(future)
                found = self._outcome(future, sid)
                future.release()
                yield sid, found
        admitted, refused = len(gate.ever_admitted), len(gate.refused)
        self.description = f"Dask {self.address} (рабочих допущено: {admitted}, отклонено: {refused})"
        if gate.admitted:  # what the run kept on them (its folder goes with the worker in any case)
            self.client.run(remote.forget, run["key"], workers=sorted(gate.admitted), on_error="ignore")

    def _outcome(self, future, sid):
        """The outcome a finished future holds; a failed one is the student's error, by its reason."""
        from distributed import KilledWorker
        if future.status == "finished":
            try:
                return outcome.from_wire(future.result(), sid)
            except outcome.BadOutcome as exc:
                return outcome.Outcome(sid, StudentResult(sid, error=f"a worker sent a bad outcome: {exc}"))
        if future.status == "cancelled":
            raise ClusterProblem(f"планировщик Dask {self.address} отменил проверку ({sid}): он перезапущен "
                                 "или связь потеряна. Запустите grade ещё раз: проверенные студенты сохранены")
        error = future.exception()
        if isinstance(error, KilledWorker):
            why = "grading worker died (Dask KilledWorker: the task killed every worker it ran on)"
        else:
            why = f"worker failed: {type(error).__name__}: {error}"
        return outcome.Outcome(sid, StudentResult(sid, error=why[:300]))

    def _no_workers(self, gate, left):
        refused = "; ".join(f"{address}: {' / '.join(reasons)}" for address, reasons in gate.refused.items())
        return (f"нет рабочих Dask, допущенных к проверке, уже {self.wait:g} с (планировщик {self.address}; "
                f"осталось проверить студентов: {left}"
                + (f"; отклонены: {refused}" if refused else "; рабочих нет")
                + "). Запустите рабочих (README, «Grading on a Dask cluster») и запустите grade ещё раз: "
                  "проверенные студенты сохранены")
