"""Where students are graded (main process): the executor of a run.

An executor has one method, ``grade(course, student_ids, settings)``: it grades
the students staged in ``course/submitted`` and yields ``(student id,
outcome.Outcome)`` as each finishes, each student once. ``LocalPool``
(pool.py, the default) grades on this machine's cores; ``DaskExecutor``
(cluster.py) on the workers of a Dask cluster. Both run the same one-student
grading (``worker/student.py``) and give back the same data, which the grade
command merges into OUT the same way (grade.py).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run grades with: the same for every student and every executor."""

    secret: str               # the course secret: seeds the hidden cases
    cell_timeout: int         # seconds per cell
    sandbox: bool             # kernels in bubblewrap (False: --unsafe-no-sandbox)
    grader_fingerprint: str   # fingerprint.grader() of the main process
    course_fingerprint: str   # fingerprint.course() of the main process


def open_executor(dask_address="", jobs=None, dask_wait=None):
    """The executor of a run: Dask at ``dask_address`` (connected here), else the local pool.

    Use it as a context manager: leaving it closes the connection to the cluster.
    ``dask_wait``: seconds a Dask run waits while no worker is admitted (cluster.py).
    """
    if dask_address:
        from . import cluster  # distributed is imported only for a Dask run
        return cluster.DaskExecutor(dask_address, dask_wait or cluster.DEFAULT_WAIT_S)
    from .pool import LocalPool
    return LocalPool(jobs)
