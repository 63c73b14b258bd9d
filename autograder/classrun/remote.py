"""The Dask tasks of a run: RUNS IN A DASK WORKER PROCESS, from that machine's copy of the repository.

``examine`` is a worker's admission to a run (admission.py decides): the
worker's own grader and course fingerprints, its sandbox, and the reference
outputs its torch computes for the run's hidden cases, compared with a sample
of the main process's. It keeps what the run needs in the worker's local
directory (the gradebook template, the reference outputs) and prepares the
process as a local pool's worker is prepared (``student.init_pool``, its own
kernel zygote). ``grant`` lets the scheduler send it the run's students.

``grade`` is one student: the staged submission arrives as bytes, is graded in a
private course made here (the same ``student.grade_student`` as the local
pool's), and goes back as data (``outcome.to_wire``). One student at a time per
worker process (the ``SLOT`` resource): nbgrader and the kernel are the
process's own while it grades.
"""
import dataclasses
import io
import pathlib
import platform
import shutil
import socket
import sys
import threading
import time

import torch

from ..checks import scoring
from ..course import DATA, ROOT
from ..nbconfig import forget_gradebooks, venv_on_path
from ..worker import student
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
_PREPARED = set()         # sandbox modes this process is prepared for
_LOCK = threading.Lock()


def _worker():
    from distributed import get_worker
    return get_worker()


def _prepare(sandbox):
    """This process as a local pool's worker: the workers' environment, one torch thread, and
    (sandboxed, where kernels fork) its own zygote, started now so that it is ready when needed."""
    with _LOCK:
        if not _PREPARED:
            venv_on_path()  # nbgrader runs alembic by name
            student.init_pool(pool.worker_environment())
        if sandbox and True not in _PREPARED:
            pool.shared_zygote(True, pool.worker_environment())
        _PREPARED.add(sandbox)


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
            if not (torch.is_tensor(got) and torch.is_tensor(want)) or got.shape != want.shape:
                worst = float("inf")
                continue
            a, b = got.double(), want.double()
            if not torch.allclose(a, b, rtol=scoring.RTOL, atol=scoring.ATOL, equal_nan=True):
                worst = max(worst, float((a - b).abs().nan_to_num(float("inf")).max()))
        if worst:
            differs[name] = worst
    return differs


def examine(run):
    """Facts of this worker for the run described by ``run`` (cluster.py); see admission.py."""
    worker = _worker()
    facts = {"address": worker.address, "host": socket.gethostname(), "nthreads": worker.state.nthreads,
             "python": platform.python_version(), "torch": torch.__version__, "root": str(ROOT),
             "grader": fingerprint.grader(), "course": fingerprint.course(), "sandbox": None,
             "reference": None}
    if facts["grader"] != run["grader"]:
        facts["grader_files"] = fingerprint.grader_files()
    if facts["course"] != run["course"]:
        facts["course_files"] = fingerprint.course_files()
    if run["sandbox"]:
        facts["sandbox"] = list(bwrap_available())
    if facts["grader"] == run["grader"] and facts["course"] == run["course"]:
        place = _install(worker, run)
        facts["reference"] = compare_references(place.reference, run["reference_sample"])
        if not run["sandbox"] or facts["sandbox"][0]:
            _prepare(run["sandbox"])
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
    _prepare(settings["sandbox"])
    worker = _worker()
    print(f"autograder: grading {student_id!r}", file=sys.stderr, flush=True)
    started = time.monotonic()
    work = staging.stage_work_from(place.work, student_id, place.template, ROOT / "source", files)
    record = student.grade_student(str(work), student_id, settings["secret"], settings["cell_timeout"],
                                   settings["sandbox"], str(place.reference),
                                   settings["grader_fingerprint"], str(DATA))
    found = outcome.read_work(work, student_id)
    forget_gradebooks(work)  # this process grades student after student: no engine kept for each
    if found.record is None:
        found.record = record
    found.worker = worker.address
    found.seconds = round(time.monotonic() - started, 3)
    return outcome.to_wire(found)
