"""THE ADAPTER between the service and the batch grader: the one place the service reaches
into ``classrun`` and the worker pool. Everything here is what ``python -m autograder grade``
does for one student, in the same order, through the same functions:

* ``BatchGrader()``: the course folder and gradebook (``gradebook.prepare``), the secret and
  the reference cache (``grade.read_secret``, ``grade.cache_references``), the fingerprint;
* ``grade_many``: stage the notebooks (``staging.stage``, repairs included), the students
  through the batch command's local executor together (``pool.LocalPool``: a private course
  each, sandboxed, the shared zygote, workers grading several in turn), each one's outcome
  (``outcome.write``: pages, notebooks, record) as it finishes, kept per attempt in
  ``OUT/attempts/<id>/``;
* ``publish``: the attempt that counts into the course: its notebooks into ``autograded/``, its
  scores into the nbgrader gradebook (``gradebook.merge_scores``, so formgrader shows the
  counted attempts), checked against the record (``grade.build_result``), its pages into
  ``OUT/feedback/<student>/`` with the report's header.

``_grade`` is the one line that picks the executor (executor.open_executor): the service grades
on its own machine's cores; a Dask address there would grade its uploads on a cluster.
"""
import pathlib
import secrets
import shutil
import tempfile
import threading

from ..classrun import collect, executor, fingerprint, gradebook, grade, outcome, pool, report, staging
from ..course import ASSIGNMENT
from ..nbconfig import venv_on_path
from ..results import StudentResult

COURSE_ID_FILE = "service-course-id"


class BatchGrader:
    """Grades one student's attempt as the batch command grades a student."""

    def __init__(self, out, db_url="", sandbox=True, cell_timeout=60, jobs=1):
        venv_on_path()
        self.jobs = jobs
        self.out = pathlib.Path(out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.db_url, self.sandbox, self.cell_timeout = db_url, sandbox, cell_timeout
        self.grader_fingerprint, course_fp = fingerprint.grader(), fingerprint.course()
        self.fingerprint = fingerprint.run(self.grader_fingerprint, course_fp)
        self.course_fingerprint = course_fp
        self.course, _ = gradebook.prepare(self.out, self.fingerprint, db_url)
        self.secret = grade.read_secret(self.out)
        grade.cache_references(self.course, self.secret, self.grader_fingerprint)
        (self.course / "work").mkdir(exist_ok=True)
        stamp = self.course / COURSE_ID_FILE   # a course folder made anew holds nothing published
        if not stamp.is_file():
            stamp.write_text(secrets.token_hex(8))
        self.course_id = stamp.read_text().strip()
        self._gradebook = threading.Lock()

    def warm(self):
        """Start what the first grading would wait for: the pool's fork server (torch and nbgrader
        imported once) and the shared zygote of sandboxed kernels."""
        pool.warm(self.sandbox)

    def attempt_dir(self, public_id):
        return self.out / "attempts" / public_id

    def grade_many(self, attempts):
        """Grade attempts of different students together, as ``grade`` grades a class: each
        ``(student id, name, {notebook: bytes}, public id)`` is staged, all go through the worker
        pool at once (``self.jobs`` workers, each grading several in turn), and each attempt's
        ``(public id, result record as data)`` is yielded as its worker finishes.

        One attempt per student (the dispatcher sees to it): the course's folders of that
        student are this attempt's while it runs.
        """
        public = {}
        staged = {}
        for student_id, name, notebooks, public_id in attempts:
            keep = self.attempt_dir(public_id)
            shutil.rmtree(keep, ignore_errors=True)   # a run cut short by a restart left these
            keep.mkdir(parents=True)
            with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
                paths = {}
                for notebook, data in notebooks.items():
                    paths[notebook] = pathlib.Path(tmp, f"{notebook}.ipynb")
                    paths[notebook].write_bytes(data)
                student = collect.Student(student_id, paths, [], _name(name))
                staged[student_id] = (staging.stage(student, self.course), _name(name))
            _copy_files(self.course / "submitted" / student_id / ASSIGNMENT, keep / "submitted", ".ipynb")
            public[student_id] = public_id
        for student_id, found in self._grade(list(public)):
            keep = self.attempt_dir(public[student_id])
            result = outcome.write(found, self.course, keep)
            (status, notes, digest), name = staged[student_id]
            result.submission, result.notes, result.digest, result.name = status, notes, digest, name
            for kind, suffix in (("autograded", ".ipynb"), ("feedback", ".html")):
                _copy_files(self.course / kind / student_id / ASSIGNMENT, keep / kind, suffix)
            result.feedback = {p.stem: p.name for p in sorted((keep / "feedback").glob("*.html"))}
            yield public[student_id], result.to_json()

    def _grade(self, student_ids):
        """The staged students through the batch command's local executor (``self.jobs``
        workers): (student id, outcome) as each finishes."""
        settings = executor.Settings(self.secret, self.cell_timeout, self.sandbox,
                                     self.grader_fingerprint, self.course_fingerprint)
        with executor.open_executor("", max(1, min(self.jobs, len(student_ids)))) as grading:
            yield from grading.grade(self.course, student_ids, settings)

    def publish(self, student_id, name, result_json, public_id):
        """The counted attempt into the course, its gradebook and OUT/feedback; return its record
        checked against the gradebook (a disagreement is the record's ``error``)."""
        keep = self.attempt_dir(public_id)
        result = StudentResult.from_json(result_json)
        with self._gradebook:
            for kind, suffix in (("submitted", ".ipynb"), ("autograded", ".ipynb"), ("feedback", ".html")):
                target = self.course / kind / student_id / ASSIGNMENT
                shutil.rmtree(target, ignore_errors=True)
                _copy_files(keep / kind, target, suffix)
            scores = gradebook.merge_scores(self.course, student_id, self.db_url, _name(name))
            student = collect.Student(student_id, {}, [], _name(name))
            checked = grade.build_result(student_id, student, result.submission, result.notes,
                                         result.digest, result, scores)
            checked.feedback = grade.copy_feedback(self.course, self.out, student_id)
            report.add_headers(self.out, [checked])
            gradebook.copy_database(self.course, self.out)
        return checked


def _name(name):
    """first_name, last_name, email of a student (nbgrader's student fields), without empty ones."""
    return {k: (name or {}).get(k) for k in ("first_name", "last_name", "email") if (name or {}).get(k)}


def _copy_files(src, dst, suffix):
    dst.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        for path in sorted(src.iterdir()):
            if path.suffix == suffix and path.is_file() and not path.is_symlink():
                shutil.copy(path, dst / path.name)
