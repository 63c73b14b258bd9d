"""The Dask tasks of a run: RUNS IN A DASK WORKER PROCESS, from that machine's copy of the repository.

``examine`` is a worker's admission to a run (admission.py decides): the
worker's own grader and course fingerprints, its sandbox, whether it may start
processes, and the reference outputs its torch computes for the run's hidden
cases, compared with a sample of the main process's. It keeps what the run
needs in the worker's local directory (the gradebook template, the reference
outputs) and starts what grading forks from (the fork server, and the kernel
zygote where kernels fork). ``grant`` lets the scheduler send it the run's
students.

``grade`` is one student: the staged submission arrives as bytes, is graded in a
private course made here by the local pool's own machinery
(``pool.GradingProcess``: a process forked from the fork server, prepared by
``student.init_pool``, running ``student.grade_student``, forked anew after as
many students as a local pool's worker grades), and goes back as data
(``outcome.to_wire``). Nothing of a student stays in the long-lived Dask worker
process. One student at a time per worker process (the ``SLOT`` resource).
"""
import dataclasses
import io
import multiprocessing
import pathlib
import platform
import shutil
import socket
import sys
import threading
import time

import torch

from ..checks import scoring
from ..course import ROOT
from ..nbconfig import venv_on_path
from ..worker.sandbox import bwrap_available
from . import fingerprint, outcome, pool, staging
from .grade import cache_references

SLOT = "autograder-slot"  # one grading at a time in a worker process, whatever its threads


def run_resource(key):
    """The resource an admitted worker has for the run ``key`` (its students require it)."""
    return f"autograder-{key}"


@dataclasses.dataclass
class RunPlace:
    """What one run needs on this worker: a folder with its gradebook template and references."""

    folder: pathlib.Path
    template: bytes

    @property
    def reference(self):
        return self.folder / "reference"

    @property
    def work(self):
        return self.folder / "work"


_RUNS = {}                # run key -> RunPlace, in this worker process
_GRADERS = {}             # sandbox -> pool.GradingProcess, in this worker process
_LOCK = threading.Lock()


def _worker():
    from distributed import get_worker
    return get_worker()


def _warm(sandbox):
    """Start, before the first student, what grading forks from (``pool.warm``)."""
    venv_on_path()  # the workers' environment (pool.worker_environment): nbgrader runs alembic by name
    pool.warm(sandbox)


def compare_references(own_dir, sample):
    """{file: largest difference} for each file of ``sample`` (main process: the first case of each
    reference file, saved by torch) whose first case here differs beyond the scoring tolerance;
    ``None`` where this worker computed no such file."""
    differs = {}
    for name, data in sample.items():
        path = pathlib.Path(own_dir) / name
        if not path.is_file():
            differs[name] = None
            continue
        theirs = torch.load(io.BytesIO(data), weights_only=True)[0]
        mine = torch.load(path, weights_only=True)[0]
        worst = 0.0
        for key, want in theirs.items():
            got = mine.get(key)
            if scoring.close(got, want):   # as a student's outputs are compared with these
                continue
            if not (torch.is_tensor(got) and torch.is_tensor(want)) or got.shape != want.shape:
                worst = float("inf")
            else:
                worst = max(worst, float((got.double() - want.double()).abs().nan_to_num(float("inf")).max()))
        if worst:
            differs[name] = worst
    return differs


def examine(run):
    """Facts of this worker for the run described by ``run`` (cluster.py); see admission.py."""
    worker = _worker()
    facts = {"address": worker.address, "host": socket.gethostname(), "nthreads": worker.state.nthreads,
             "python": platform.python_version(), "torch": torch.__version__, "root": str(ROOT),
             "grader": fingerprint.grader(), "course": fingerprint.course(), "sandbox": None,
             "reference": None, "daemon": multiprocessing.current_process().daemon}
    if facts["grader"] != run["grader"]:
        facts["grader_files"] = fingerprint.grader_files()
    if facts["course"] != run["course"]:
        facts["course_files"] = fingerprint.course_files()
    if run["sandbox"]:
        facts["sandbox"] = list(bwrap_available())
    if facts["grader"] == run["grader"] and facts["course"] == run["course"]:
        place = _install(worker, run)
        facts["reference"] = compare_references(place.reference, run["reference_sample"])
        if (not run["sandbox"] or facts["sandbox"][0]) and not facts["daemon"]:
            _warm(run["sandbox"])
    return facts


def _install(worker, run):
    """The run's place in this worker's local directory: gradebook template, reference outputs."""
    with _LOCK:
        place = _RUNS.get(run["key"])
        if place is None:
            folder = pathlib.Path(worker.local_directory) / "autograder" / run["key"]
            folder.mkdir(parents=True, exist_ok=True)
            place = RunPlace(folder, run["template"])
            place.work.mkdir(exist_ok=True)
            cache_references(place.folder, run["secret"], run["grader"])
            _RUNS[run["key"]] = place
        return place


def forget(key):
    """Remove what run ``key`` kept on this worker (it has finished)."""
    with _LOCK:
        place = _RUNS.pop(key, None)
    if place is not None:
        shutil.rmtree(place.folder, ignore_errors=True)


async def grant(resources, dask_worker=None):
    """Give this worker ``resources`` (an admission), and have the scheduler reconsider it.

    The scheduler offers a task that no worker could run to a worker when it joins or resumes,
    not when its resources change: a pause and resume, at once, is that resumption.
    """
    from distributed.core import Status
    await dask_worker.set_resources(**resources)
    if dask_worker.status == Status.running:
        dask_worker.status = Status.paused
        dask_worker.status = Status.running


def grade(key, student_id, files, settings):
    """Grade one student of run ``key`` from ``files`` (``staging.submission_files``); the
    outcome as data. ``settings``: ``executor.Settings`` as a dict."""
    place = _RUNS.get(key)
    if place is None:
        raise RuntimeError(f"this worker was not admitted to run {key} (restarted since?)")
    print(f"autograder: grading {student_id!r}", file=sys.stderr, flush=True)
    started = time.monotonic()
    venv_on_path()
    work = staging.stage_work_from(place.work, student_id, place.template, ROOT / "source", files)
    with _LOCK:
        if settings["sandbox"] not in _GRADERS:
            _GRADERS[settings["sandbox"]] = pool.GradingProcess(settings["sandbox"])
        grader = _GRADERS[settings["sandbox"]]
    record = grader.grade(work, student_id, settings["secret"], settings["cell_timeout"], place.reference,
                          settings["grader_fingerprint"])
    found = outcome.read_work(work, student_id)
    if found.record is None:  # the grading process wrote none: what the pool knows (a crash, say)
        found.record = record
    found.worker = _worker().address
    found.seconds = round(time.monotonic() - started, 3)
    return outcome.to_wire(found)
