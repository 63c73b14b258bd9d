"""The course gradebook in a real PostgreSQL server, with URLs as people write them: grade,
re-grade, read it back with nbgrader; a server that cannot be used is one line before any work."""
import csv
import shutil

import pytest

import postgres
from autograder import nbconfig
from autograder.__main__ import main
from autograder.classrun import database
from autograder.course import TASKS
from lms import formgrader_students, grade_command, moodle_export  # tests/ is on sys.path


@pytest.fixture(scope="module")
def db_url():
    """``postgresql://postgres:PASSWORD@127.0.0.1:PORT/gradebook`` of a throw-away server."""
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL server binaries not installed (make setup installs Debian's postgresql as root)")
    with postgres.server() as url:
        yield url


def driver(url, name):
    """``url`` with the driver ``name`` written out (``postgresql+psycopg2://…``)."""
    return url.replace("postgresql://", f"postgresql+{name}://", 1)


def gradebook_scores(url):
    from nbgrader.api import Gradebook
    nbconfig.venv_on_path()
    with Gradebook(url) as gb:
        names = {s.id: (s.first_name, s.last_name) for s in gb.students}
        totals = {s.id: gb.find_submission("gpt", s.id).score for s in gb.students}
    return names, totals


def csv_totals(out):
    with open(out / "grades.csv", encoding="utf-8") as f:
        return {row["student_id"]: float(row["total"]) for row in csv.DictReader(f)}


@pytest.mark.slow
def test_grade_and_regrade_into_postgres(db_url, tmp_path):
    """Graded with the plain ``postgresql://`` URL (psycopg 3), re-graded through psycopg2: the
    same gradebook, only the changed student graded again, the password printed nowhere."""
    password = database.make_url(db_url).password
    export = moodle_export(tmp_path / "export", {("Anna Petrova", "1001"): True, ("Ivan Ivanov", "1002"): False})
    out = tmp_path / "out"
    done = grade_command(export, "--out", out, "--db-url", db_url)
    assert "проверяется заново: 2" in done.stderr
    assert password not in done.stdout + done.stderr
    names, totals = gradebook_scores(db_url)
    assert names == {"1001": ("Anna", "Petrova"), "1002": ("Ivan", "Ivanov")}
    assert totals == {"1001": 10.0, "1002": 0.0} == csv_totals(out)
    assert not (out / "gradebook.db").exists()            # the gradebook is on the server, not in OUT
    assert db_url in (out / "course" / "nbgrader_config.py").read_text()
    listed = {s["id"]: (s["last_name"], s["score"]) for s in formgrader_students(out / "course")}
    assert listed == {"1001": ("Petrova", 10.0), "1002": ("Ivanov", 0.0)}   # formgrader reads the server

    # Ivan hands in Anna's solution of the first task: only he is graded again, through psycopg2
    shutil.copy(export / "Anna Petrova_1001_assignsubmission_file_" / f"{TASKS[0].notebook}.ipynb",
                export / "Ivan Ivanov_1002_assignsubmission_file_" / f"{TASKS[0].notebook}.ipynb")
    done = grade_command(export, "--out", out, "--db-url", driver(db_url, "psycopg2"))
    assert "проверяется заново: 1" in done.stderr
    names, totals = gradebook_scores(driver(db_url, "psycopg2"))
    assert totals == {"1001": 10.0, "1002": float(TASKS[0].points)} == csv_totals(out)
    assert len(names) == 2
    assert driver(db_url, "psycopg2") in (out / "course" / "nbgrader_config.py").read_text()


def test_the_urls_people_write_connect(db_url):
    """``postgresql://`` (psycopg 3, SQLAlchemy's default), ``postgresql+psycopg://``,
    ``postgresql+psycopg2://`` and the ``postgres://`` of many guides reach the server."""
    for url in (db_url, driver(db_url, "psycopg"), driver(db_url, "psycopg2"),
                db_url.replace("postgresql://", "postgres://")):
        assert database.problem(database.canonical(url)) is None, url
    assert database.identity(db_url) == database.identity(driver(db_url, "psycopg2"))
    assert database.identity(db_url) != database.identity(db_url.replace("/gradebook", "/other"))


def failing_urls(url):
    """(URL, words of its message) for a server that does not answer, a wrong password and a
    database the server does not have."""
    parsed = database.make_url(url)
    return [(parsed.set(port=postgres._free_port()).render_as_string(hide_password=False),
             ["недоступен", "Connection refused", "проверьте сервер и порт"]),
            (parsed.set(password="wrong-" + parsed.password).render_as_string(hide_password=False),
             ["не принял пользователя «postgres»", "password authentication failed", "проверьте имя пользователя и пароль"]),
            (parsed.set(database="no_such_gradebook").render_as_string(hide_password=False),
             ["нет базы данных «no_such_gradebook»", "createdb", "127.0.0.1"])]


@pytest.mark.parametrize("name", ["", "psycopg2"])
def test_a_database_that_cannot_be_used_is_one_line_before_any_work(db_url, tmp_path, capsys, name):
    """The grade command stops with exit 2 and one Russian line that names the cause, the option
    and the URL with its password hidden; nothing is made."""
    password = database.make_url(db_url).password
    (tmp_path / "class").mkdir()
    out = tmp_path / "out"
    for url, words in failing_urls(db_url):
        url = driver(url, name) if name else url
        assert main(["grade", str(tmp_path / "class"), "--out", str(out), "--db-url", url]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
        line = captured.err.strip()
        assert line.startswith(f"ошибка: --db-url postgresql{'+' + name if name else ''}://postgres:***@127.0.0.1:")
        assert password not in line and "Traceback" not in line
        for word in words:
            assert word in line, (word, line)
        assert not out.exists()


def test_the_url_of_nbgrader_config_is_checked_too(db_url, tmp_path, capsys, monkeypatch):
    url, words = failing_urls(db_url)[1]
    config = tmp_path / "nbgrader_config.py"
    config.write_text(f"c = get_config()\nc.CourseDirectory.db_url = {url!r}\n", encoding="utf-8")
    monkeypatch.setattr(nbconfig, "NBGRADER_CONFIG", config)
    (tmp_path / "class").mkdir()
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("ошибка: c.CourseDirectory.db_url (nbgrader_config.py) postgresql://postgres:***@")
    assert database.make_url(url).password not in line and words[0] in line
    assert not (tmp_path / "out").exists()


def test_urls_that_name_no_usable_database(tmp_path):
    """Without a server: a URL that does not parse, an unknown kind, a driver not installed,
    a missing SQLite folder; passwords hidden wherever a URL is shown."""
    assert "не URL базы данных" in database.problem("grader:secret@db.example.org/gpt")
    assert "secret" not in database.problem("grader:secret@db.example.org/gpt")
    assert "неизвестный вид базы данных «postgresq»" in database.problem("postgresq://grader@db/gpt")
    line = database.problem("postgresql+pg8000://grader:secret@db.example.org/gpt")
    assert "драйвер «pg8000» не установлен" in line and "secret" not in line and ":***@" in line
    assert "нет папки" in database.problem(f"sqlite:///{tmp_path}/missing/gradebook.db")
    assert database.problem(f"sqlite:///{tmp_path}/gradebook.db") is None
    assert database.shown("postgresql://u:p%40ss@h/db?password=x") == "postgresql://u:***@h/db?password=%2A%2A%2A"
    assert database.canonical("postgres://u@h/db") == "postgresql://u@h/db"
    assert database.canonical("postgres+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert database.canonical("postgresql://u@h/db") == "postgresql://u@h/db"
