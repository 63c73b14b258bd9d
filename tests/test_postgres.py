"""The course gradebook in a real PostgreSQL server: grade, re-grade, read it back with nbgrader."""
import csv
import shutil

import pytest

import postgres
from autograder.course import TASKS
from lms import formgrader_students, grade_command, moodle_export  # tests/ is on sys.path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def db_url():
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL server binaries not installed (make setup installs Debian's postgresql as root)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (requirements.txt)")
    with postgres.server() as url:
        yield url


def gradebook_scores(url):
    from autograder.nbconfig import venv_on_path
    from nbgrader.api import Gradebook
    venv_on_path()
    with Gradebook(url) as gb:
        names = {s.id: (s.first_name, s.last_name) for s in gb.students}
        totals = {s.id: gb.find_submission("gpt", s.id).score for s in gb.students}
    return names, totals


def csv_totals(out):
    with open(out / "grades.csv", encoding="utf-8") as f:
        return {row["student_id"]: float(row["total"]) for row in csv.DictReader(f)}


def test_grade_and_regrade_into_postgres(db_url, tmp_path):
    export = moodle_export(tmp_path / "export", {("Anna Petrova", "1001"): True, ("Ivan Ivanov", "1002"): False})
    out = tmp_path / "out"
    done = grade_command(export, "--out", out, "--db-url", db_url)
    assert "проверяется заново: 2" in done.stderr
    names, totals = gradebook_scores(db_url)
    assert names == {"1001": ("Anna", "Petrova"), "1002": ("Ivan", "Ivanov")}
    assert totals == {"1001": 10.0, "1002": 0.0} == csv_totals(out)
    assert not (out / "gradebook.db").exists()            # the gradebook is on the server, not in OUT
    assert db_url in (out / "course" / "nbgrader_config.py").read_text()
    listed = {s["id"]: (s["last_name"], s["score"]) for s in formgrader_students(out / "course")}
    assert listed == {"1001": ("Petrova", 10.0), "1002": ("Ivanov", 0.0)}   # formgrader reads the server

    # Ivan hands in Anna's solution of the first task: only he is graded again, and the server has it
    shutil.copy(export / "Anna Petrova_1001_assignsubmission_file_" / f"{TASKS[0].notebook}.ipynb",
                export / "Ivan Ivanov_1002_assignsubmission_file_" / f"{TASKS[0].notebook}.ipynb")
    done = grade_command(export, "--out", out, "--db-url", db_url)
    assert "проверяется заново: 1" in done.stderr
    names, totals = gradebook_scores(db_url)
    assert totals == {"1001": 10.0, "1002": float(TASKS[0].points)} == csv_totals(out)
    assert len(names) == 2
