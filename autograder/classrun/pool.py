"""The worker pool (main process): students graded in parallel, one process each.

``LocalPool`` is the default executor (executor.py): it stages each student's
private course here and yields the outcomes. ``run`` yields each student's
record as its worker finishes; ``GradingProcess`` grades students that come one
at a time (a Dask worker's) the same way. Workers are
forked fresh per batch (``max_tasks_per_child`` can hang: CPython gh-115634)
from a fork server that imported the worker's modules (torch, nbgrader) once.
The grade command's first workers are forked from the main process itself, before
it starts a thread or runs a torch op (``fork_workers``): they inherit its modules,
and no fork server has to import them again. A student whose worker crashed is
retried once in a fresh pool, so one crash costs no one else. A worker error is
never dropped: it comes back as the record's ``error``.
"""
import concurrent.futures
import gc
import multiprocessing
import multiprocessing.forkserver
import os

from ..course import DATA
from ..results import StudentResult
from . import gradebook, outcome, staging
from ..worker import student as worker
from ..worker.sandbox import zygote
from ..worker.sandbox import SandboxedKernelManager

BATCH_PER_WORKER = 20


def kernel_environment():
    """Environment of the grading workers and the kernels they start: one thread each.

    ``GPT_COURSE_MODE=grading``: the course's notebook helpers (``gpt_course``, ``gpt_errors``)
    leave the earlier steps a notebook imports unchecked and explain no failure with the
    diagnosis: each task is graded on its own, with stand-ins, and explained by the grader."""
    one = "1"
    return {"OMP_NUM_THREADS": one, "MKL_NUM_THREADS": one, "OPENBLAS_NUM_THREADS": one,
            "GPT_COURSE_DATA": str(DATA), "GPT_MAX_ITERS": "1", "MPLBACKEND": "Agg",
            "GPT_COURSE_MODE": "grading", "PATH": os.environ.get("PATH", "")}


def worker_environment():
    """A worker's whole environment: this process's, with ``kernel_environment``, no PYTHONPATH."""
    env = dict(os.environ, **kernel_environment())
    env.pop("PYTHONPATH", None)
    return env


def shared_zygote(sandbox, environment):
    """(environment, socket, pid) of a zygote this process starts for the kernels of workers with
    ``environment``, or None.

    One zygote a run instead of one a worker: it imports torch once, while the
    workers start (zygote.py); a worker whose kernels want another environment
    starts its own.
    """
    if not (sandbox and zygote.supported()):
        return None
    env = SandboxedKernelManager().forked_kernel_env(environment)
    started = zygote.for_env(env)
    return env, started.socket_path, started.server_pid


def forkserver_context():
    """The context workers are forked in: from a fork server that imported the worker's modules
    once, not once per worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([worker.__name__])
    return context


def single_threaded():
    """True when this process runs one thread (Linux's /proc says so): only such a process may
    fork workers, for no other thread holds a lock then and no OpenMP team exists that a
    child would believe it has (libgomp does not survive a fork)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def new_workers(jobs, environment, shared, context=None):
    """An executor of ``jobs`` grading workers (forked from the fork server unless ``context``)."""
    return concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=context or forkserver_context(), initializer=worker.init_pool,
        initargs=(environment, shared))


def fork_workers(jobs, sandbox):
    """``jobs`` workers forked from this process now, or None where it is not single-threaded.

    They inherit what this process has imported (torch, nbgrader, the worker's modules), so
    no fork server imports them again (2.2-3 CPU-s, which the first student waited for): a
    class of one took about 2 CPU-s and 2 s less.
    Call it before this process starts a thread or runs a torch op, as ``grade_all`` does
    first; later batches and retries come from the fork server.
    """
    if not single_threaded():
        return None
    environment = worker_environment()
    workers = new_workers(jobs, environment, shared_zygote(sandbox, environment),
                          multiprocessing.get_context("fork"))
    # What exists now is left out of garbage collection, here and in the workers: a collection
    # would write to every object and so copy every page that the fork shares (1 CPU-s a run).
    gc.freeze()
    workers.submit(os.getpid)  # a fork pool forks all its workers at its first task
    return workers


def warm(sandbox):
    """Start, before the first student, what grading forks from: the workers' fork server (it
    imports the grading modules once) and, sandboxed where kernels fork, the kernel zygote."""
    forkserver_context()
    multiprocessing.forkserver.ensure_running()
    shared_zygote(sandbox, worker_environment())


def run(works, secret, cell_timeout, sandbox, reference_dir, fingerprint, jobs, forked=None):
    """Yield (student id, StudentResult) as workers finish; ``works``: id -> work folder.

    ``forked``: workers forked beforehand (``fork_workers``), which grade the first batch."""
    queue, attempts = list(works), dict.fromkeys(works, 0)
    environment = worker_environment()
    shared = shared_zygote(sandbox, environment) if works else None
    while queue:
        batch, queue = queue[:jobs * BATCH_PER_WORKER], queue[jobs * BATCH_PER_WORKER:]
        retry = []
        pool, forked = forked or new_workers(jobs, environment, shared), None
        try:
            futures = {pool.submit(worker.grade_student, str(works[sid]), sid, secret, cell_timeout,
                                   sandbox, str(reference_dir), fingerprint, str(DATA)): sid
                       for sid in batch}
            for future in concurrent.futures.as_completed(futures):
                sid = futures[future]
                attempts[sid] += 1
                try:
                    yield sid, future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    if attempts[sid] < 2:
                        retry.append(sid)
                    else:
                        yield sid, StudentResult(sid, error=CRASHED_TWICE)
                except Exception as exc:  # a failed worker costs only this student, and says why
                    yield sid, failed(sid, exc)
        finally:  # a run stopped early (Ctrl+C, or no longer taking records) starts no one else
            pool.shutdown(wait=True, cancel_futures=True)
        queue = retry + queue
    if forked is not None:  # nothing to grade
        forked.shutdown(wait=True, cancel_futures=True)


CRASHED_TWICE = "worker crashed twice (BrokenProcessPool)"


def failed(sid, exc):
    """The record of a student whose worker failed, saying why."""
    return StudentResult(sid, error=f"worker failed: {type(exc).__name__}: {exc}"[:300])


class GradingProcess:
    """One grading worker for students that come one at a time (a Dask worker's, remote.py),
    as ``run`` grades them: forked from the fork server, prepared by ``init_pool``, forked anew
    after ``BATCH_PER_WORKER`` students, and a student whose worker crashed is tried once more
    in a fresh one."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self._pool, self._graded = None, 0

    def _fresh(self):
        self.close()
        environment = worker_environment()
        shared = shared_zygote(self.sandbox, environment)  # started again if it has died
        self._pool = new_workers(1, environment, shared)
        self._graded = 0

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def grade(self, work, sid, secret, cell_timeout, reference_dir, fingerprint):
        """The StudentResult of ``sid`` graded in ``work`` (a worker error is its ``error``)."""
        for _ in range(2):
            if self._pool is None or self._graded >= BATCH_PER_WORKER:
                self._fresh()
            self._graded += 1
            future = self._pool.submit(worker.grade_student, str(work), sid, secret, cell_timeout,
                                       self.sandbox, str(reference_dir), fingerprint, str(DATA))
            try:
                return future.result()
            except concurrent.futures.process.BrokenProcessPool:
                self.close()
            except Exception as exc:
                return failed(sid, exc)
        return StudentResult(sid, error=CRASHED_TWICE)


class LocalPool:
    """The executor that grades on this machine: ``jobs`` workers (default: every core)."""

    def __init__(self, jobs=None):
        self.jobs = jobs
        self.description = "локально"
        self._forked = None

    def fork_workers(self, sandbox):
        """Fork the workers now, if this process is single-threaded (``fork_workers``); True if
        it did. Without it, or where it could not, ``grade`` starts them from the fork server."""
        self.close()
        self._forked = fork_workers(self.jobs or os.cpu_count() or 1, sandbox)
        return self._forked is not None

    def close(self):
        """Let workers forked for a run that graded no one go."""
        if self._forked is not None:
            self._forked.shutdown(wait=True, cancel_futures=True)
            self._forked = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def grade(self, course, student_ids, settings):
        """Yield (student id, Outcome) as the workers finish (executor.py)."""
        jobs = min(self.jobs or os.cpu_count() or 1, max(len(student_ids), 1))
        self.description = f"локально, процессов: {jobs}"
        template = gradebook.worker_template(course)
        works = {sid: staging.stage_work(course, sid, template) for sid in student_ids}
        forked, self._forked = self._forked, None
        for sid, record in run(works, settings.secret, settings.cell_timeout, settings.sandbox,
                               course / "reference", settings.grader_fingerprint, jobs, forked):
            found = outcome.read_work(works[sid], sid)
            if found.record is None:  # the worker wrote none: what the pool knows (a crash, say)
                found.record = record
            yield sid, found
