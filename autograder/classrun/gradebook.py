"""The course folder OUT/course and its nbgrader gradebook (main process).

``prepare`` makes an nbgrader course from ``source/`` with the repository's own
``nbgrader_config.py`` (loaded, not copied); ``merge_scores`` records a student's
autograded notebooks in the course gradebook (nbgrader's ``SaveAutoGrades``:
the known workaround for nbgrader #174, one private gradebook per worker).
"""
import json
import pathlib
import shutil

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import SaveAutoGrades
from ..course import ASSIGNMENT, NBGRADER_CONFIG, ROOT, TASKS
from ..nbconfig import course_config
from . import database

FINGERPRINT_FILE = "fingerprint.json"
WORKER_TEMPLATE = "worker-template.db"
LOCAL_CONFIG = '''\
"""Grading folder made by `python -m autograder grade`: the course's configuration
({config}) with this folder as the course root, for formgrader and nbgrader commands."""
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
'''


def configured_db_url():
    """``c.CourseDirectory.db_url`` of the repository's nbgrader_config.py, or ""."""
    config = course_config(ROOT)
    return config.CourseDirectory.db_url if "db_url" in config.CourseDirectory else ""


def configured_dask():
    """``c.Autograder.dask`` of the repository's nbgrader_config.py (a Dask scheduler's address), or ""."""
    config = course_config(ROOT)
    return config.Autograder.dask if "dask" in config.Autograder else ""


def db_url_of(course, db_url=""):
    return db_url or f"sqlite:///{course / 'gradebook.db'}"


def prepare(out, fingerprint, db_url=""):
    """OUT/course for ``fingerprint``: made anew when missing or made by another course/grader,
    or for another database (another driver or password for the same one is the same gradebook).

    Returns (course folder, True if it was made anew).
    """
    course = out / "course"
    stamp = course / FINGERPRINT_FILE
    url = db_url_of(course, db_url)
    wanted = {"fingerprint": fingerprint, "database": database.identity(url)}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        write_local_config(course, url)  # this run's URL, for formgrader and nbgrader commands
        return course, False
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    shutil.copytree(ROOT / "source", course / "source")
    write_local_config(course, url)
    urls = [url]
    if db_url:  # workers grade into private SQLite copies of a gradebook that has the assignment
        urls.append(f"sqlite:///{course / WORKER_TEMPLATE}")
    for url in urls:
        config = course_config(course, url)
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        result = api.generate_assignment(ASSIGNMENT, force=True)
        if not result.get("success"):
            raise RuntimeError(f"nbgrader generate_assignment failed ({url.split(':')[0]}):\n"
                               + str(result.get("error", "")) + "\n" + str(result.get("log", "")))
    stamp.write_text(json.dumps(wanted))
    return course, True


def write_local_config(course, url):
    (course / "nbgrader_config.py").write_text(LOCAL_CONFIG.format(
        config=str(NBGRADER_CONFIG), root=str(course), db_url=url), encoding="utf-8")


def worker_template(course):
    """The SQLite gradebook a worker's private course starts from."""
    own = course / WORKER_TEMPLATE
    return own if own.is_file() else course / "gradebook.db"


def record_student(course, student_id, db_url="", name=None):
    """The student (with first/last name and e-mail, where known) in the course gradebook."""
    with Gradebook(db_url_of(course, db_url)) as gb:
        gb.update_or_create_student(student_id, **{k: v for k, v in (name or {}).items() if v})


def merge_scores(course, student_id, db_url="", name=None):
    """Record the autograded notebooks' scores in the course gradebook; return them per task."""
    url = db_url_of(course, db_url)
    record_student(course, student_id, db_url, name)
    with Gradebook(url) as gb:
        gb.update_or_create_submission(ASSIGNMENT, student_id)
    for spec in TASKS:
        path = course / "autograded" / student_id / ASSIGNMENT / f"{spec.notebook}.ipynb"
        if path.is_file():
            nb = nbformat.read(str(path), as_version=4)
            resources = {"nbgrader": {"notebook": spec.notebook, "assignment": ASSIGNMENT,
                                      "student": student_id, "db_url": url}}
            SaveAutoGrades().preprocess(nb, resources)
    scores = {}
    with Gradebook(url) as gb:
        for spec in TASKS:
            try:
                scores[spec.key] = gb.find_grade(spec.tests_id, spec.notebook, ASSIGNMENT, student_id).score
            except MissingEntry:  # no autograded notebook: nothing scored
                scores[spec.key] = 0.0
    return scores


def copy_database(course, out):
    """OUT/gradebook.db, a copy of a SQLite course gradebook (nothing for a server)."""
    path = pathlib.Path(course) / "gradebook.db"
    if path.is_file():
        shutil.copy(path, out / "gradebook.db")
