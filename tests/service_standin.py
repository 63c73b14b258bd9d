"""A stand-in grader behind the service's grading interface, for the tests of the queue only
(durability, fairness, limits): it grades nothing, sleeps a little and scores each task by
whether the notebook holds the word ``SOLVED`` (and reports a crashed worker, as the pool does, on ``CRASH``). ``tests/test_service.py`` proves the real
grading path end to end; this one lets 200 uploads go through in seconds.

Each grading it completes is appended (and synced) to ``OUT/standin-graded.log``.
"""
import concurrent.futures
import os
import pathlib
import time

from autograder.course import TASKS
from autograder.results import StudentResult, TaskResult


class StandInGrader:
    fingerprint = "stand-in"
    grader_fingerprint = "stand-in"
    course_fingerprint = "stand-in"
    course_id = "stand-in"
    sandbox = False

    def __init__(self, out):
        self.out = pathlib.Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.delay = float(os.environ.get("STANDIN_SECONDS", "0.2"))
        self.jobs = int(os.environ.get("STANDIN_JOBS", "4"))

    def _append(self, name, line):
        fd = os.open(self.out / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def grade(self, student_id, name, notebooks, public_id):
        time.sleep(self.delay)
        if any(b"CRASH" in data for data in notebooks.values()):
            self._append("standin-crashed.log", public_id)   # as pool.run reports a worker that died
            return public_id, StudentResult(student_id, error="worker crashed twice (BrokenProcessPool)").to_json()
        tasks = {spec.key: TaskResult(spec.key, spec.points if b"SOLVED" in notebooks.get(spec.notebook, b"") else 0.0)
                 for spec in TASKS}
        self._append("standin-graded.log", public_id)
        return public_id, StudentResult(student_id, tasks=tasks).to_json()

    def grade_many(self, attempts):
        """As the real grader: attempts of different students at once, each yielded as it is done."""
        with concurrent.futures.ThreadPoolExecutor(max(1, min(self.jobs, len(attempts)))) as pool:
            futures = [pool.submit(self.grade, *attempt) for attempt in attempts]
            for future in concurrent.futures.as_completed(futures):
                yield future.result()

    def publish(self, student_id, name, result, public_id):
        self._append("standin-published.log", f"{student_id} {public_id}")
