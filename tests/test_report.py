"""Fast tests of the instructor report and the feedback headers (no grading: made-up result records)."""
import base64
import html.parser
import re
import xml.etree.ElementTree as ET

import pytest

from autograder.classrun import charts, moodle, report
from autograder.course import NOTEBOOKS
from autograder.results import Event, Note, RunInfo, StudentResult, TaskResult
from autograder.worker.feedback import PAGE_POLICY

HOSTILE = '<img src=x onerror="alert(1)">'
# the head of a feedback page as the grading worker writes it (worker/feedback.py)
POLICY = f'<meta http-equiv="Content-Security-Policy" content="{PAGE_POLICY}">'


def make_results(out):
    """Three students: full marks, a named mistake and a missing notebook, a timeout and an error."""
    def page(sid, name):
        path = out / "feedback" / sid / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!DOCTYPE html>\n<html><head><title>{name}</title>{POLICY}</head>\n<body class='x'>\n"
                        f"<p>nbgrader page {name}</p></body></html>", encoding="utf-8")
        return f"feedback/{sid}/{name}.html"

    full = {k: TaskResult(k, points=p) for k, p in
            dict(head=2, multihead=1, feedforward=1, block=2, gpt_model=4).items()}
    good = StudentResult("s_good", tasks=dict(full), name={"first_name": "Анна", "last_name": "Петрова"})
    good.feedback = {"01_head": page("s_good", "01_head")}
    weak = StudentResult("s_weak", tasks=dict(full), submission=[Note("03_feedforward", "missing"),
                                                                 Note("06_training", "missing")],
                         notes=["'01_Head (1).ipynb' принят как 01_head"])
    weak.tasks["head"] = TaskResult("head", 1.5, [["no_scale", "Веса внимания не делятся на √head_size."]])
    weak.tasks["feedforward"] = TaskResult("feedforward", 0.0, [["not_implemented", "не решено"]])
    weak.feedback = {"01_head": page("s_weak", "01_head"), "04_block": page("s_weak", "04_block")}
    evil = StudentResult("evil_1", tasks=dict(full), name={"first_name": HOSTILE, "last_name": "X"},
                         events=[Event("05_gpt_model", "timeout", "ячейка шла дольше 60 с")],
                         error="Traceback\nRuntimeError: boom " + HOSTILE)
    evil.tasks["head"] = TaskResult("head", 1.5, [["no_scale", "Веса внимания не делятся на √head_size."]])
    evil.tasks["gpt_model"] = TaskResult("gpt_model", 0.0, [["odd", HOSTILE]])
    return {r.student_id: r for r in (good, weak, evil)}


INFO = RunInfo(started="2026-11-30T03:00:00", wall_seconds=83.4, grader_fingerprint="abcdef0123456789ff",
               course_fingerprint="0011223344556677", graded=2, reused=1, sandbox=True)


class Parser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.hrefs, self.text = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs.get("href"))
        if tag in ("img", "script", "link") and any(
                (attrs.get(a) or "").startswith(("http", "//")) for a in ("src", "href")):
            raise AssertionError(f"external resource: {attrs}")

    def handle_data(self, data):
        self.text.append(data)


def parse(text):
    parser = Parser()
    parser.feed(text)
    parser.text = " ".join(parser.text)
    return parser


SVG = "{http://www.w3.org/2000/svg}"


def svg_bars(uri):
    """{tooltip: height} of the bars of a chart's data URI (an SVG with nothing but shapes and text)."""
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    root = ET.fromstring(base64.b64decode(uri[len(prefix):]))
    kinds = {el.tag.replace(SVG, "") for el in root.iter()}
    assert kinds <= {"svg", "title", "rect", "line", "text"}, kinds
    assert not any(name.startswith("on") or "href" in name for el in root.iter() for name in el.attrib)
    return {el.find(SVG + "title").text: float(el.get("height")) for el in root.iter(SVG + "rect")
            if el.get("class") == "bar"}


def test_the_charts_are_svg_whose_bars_are_the_class(tmp_path):
    grades, tasks = report.charts(make_results(tmp_path))
    bars = svg_bars(grades)   # totals 10, 8.5 and 5.5: one student each, nothing else drawn
    assert set(bars) == {"10 из 10: 1 студент", "8.5 из 10: 1 студент", "5.5 из 10: 1 студент"}
    assert len(set(bars.values())) == 1
    bars = svg_bars(tasks)
    assert set(bars) == {"Head: 33% (1 из 3)", "MultiHeadAttention: 100% (3 из 3)", "FeedFoward: 67% (2 из 3)",
                         "Block: 100% (3 из 3)", "GPTModel: 67% (2 из 3)"}
    full = bars["Block: 100% (3 из 3)"]
    assert bars["Head: 33% (1 из 3)"] == pytest.approx(full / 3, abs=0.1)
    assert bars["GPTModel: 67% (2 из 3)"] == pytest.approx(full * 2 / 3, abs=0.1)
    assert svg_bars(report.charts([])[0]) == {}   # an empty class: axes, no bars


def test_chart_axes_count_in_whole_steps_and_students_agree_in_number():
    assert charts.integer_ticks(0) == [0, 1]
    assert charts.integer_ticks(3) == [0, 1, 2, 3]
    assert charts.integer_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.integer_ticks(100, most=5) == [0, 20, 40, 60, 80, 100]
    assert charts.integer_ticks(130) == [0, 50, 100, 150]
    assert [charts.students(n) for n in (1, 2, 5, 11, 12, 21, 22, 25, 101, 111)] == [
        "1 студент", "2 студента", "5 студентов", "11 студентов", "12 студентов", "21 студент",
        "22 студента", "25 студентов", "101 студент", "111 студентов"]


def test_report_content(tmp_path):
    results = make_results(tmp_path)
    path = report.write(tmp_path, results, INFO)
    text = path.read_text(encoding="utf-8")
    doc = parse(text)
    assert doc.tags.count("img") == 2 and text.count('src="data:image/svg+xml;base64,') == 2
    # the attention section comes first and names every problem, in Russian
    attention = text[text.index('id="attention"'):text.index('id="glance"')]
    for words in ("нет ноутбука 03_feedforward: FeedFoward получает 0", "06_training: он не оценивается, но нужен",
                  "превышено время", "ошибка проверки",
                  "принят как 01_head"):
        assert words in attention, words
    assert "s_good" not in attention
    # the class at a glance: mean and median of 10, 8.5 and 5.5
    assert "средний балл <b>8.00</b>" in text and "медиана <b>8.5</b>" in text
    # mistakes by their message, with count and who; stubs are not mistakes
    mistakes = text[text.index('id="mistakes"'):text.index('id="table"')]
    assert "Веса внимания не делятся на √head_size." in mistakes and "no_scale" not in mistakes
    assert re.search(r"</span>2</td>", mistakes) and "не решено" not in mistakes
    table = text[text.index('id="table"'):text.index('id="run"')]
    assert "не решены: FeedFoward" in table and "Head: Веса внимания не делятся" in table
    # links: every feedback page of every student, relative to OUT, and they exist
    pages = [h for h in doc.hrefs if h.startswith("feedback/")]
    assert sorted(pages) == sorted(p for r in results.values() for p in r.feedback.values())
    assert all((tmp_path / p).is_file() for p in pages)
    assert {"s-s_good", "s-s_weak", "s-evil_1", "students", "filter"} <= doc.ids
    # the run's facts
    for fact in ("2026-11-30 03:00:00", "abcdef012345", "001122334455", "83 с"):
        assert fact in text
    assert "abcdef0123456789" not in text


def test_everything_is_escaped(tmp_path):
    text = report.write(tmp_path, make_results(tmp_path), INFO).read_text(encoding="utf-8")
    assert HOSTILE not in text and "onerror=\"alert" not in text
    assert html.escape(HOSTILE) in text
    assert text.count("<script>") == 1


def test_feedback_headers_are_added_once(tmp_path):
    results = make_results(tmp_path)
    report.write(tmp_path, results, INFO)
    report.write(tmp_path, results, INFO)
    page = (tmp_path / "feedback" / "s_weak" / "01_head.html").read_text(encoding="utf-8")
    assert page.count(report.HEADER_BEGIN) == 1 and page.count('id="grading-summary"') == 1
    assert page.index("<body class='x'>") < page.index(report.HEADER_BEGIN) < page.index("nbgrader page")
    header = page[page.index(report.HEADER_BEGIN):page.index(report.HEADER_END)]
    assert "1.5 из 2" in header and "Веса внимания не делятся" in header and "0 из 1" in header
    assert "8.5 из 10" in header
    assert "autograder" not in page          # the page names no grader internals
    evil = (tmp_path / "feedback" / "s_good" / "01_head.html").read_text(encoding="utf-8")
    assert "Петрова Анна" in evil


def test_empty_class(tmp_path):
    text = report.write(tmp_path, {}, RunInfo()).read_text(encoding="utf-8")
    assert "Студентов: <b>0</b>" in text


def test_every_event_kind_is_worded_in_russian():
    """A kind the worker can record (results.EVENTS) has the report's words, long and short."""
    from autograder.classrun.report import status_text
    from autograder.results import EVENTS, Event, StudentResult
    for kind in EVENTS:
        result = StudentResult("s", events=[Event("01_head", kind, "")])
        short = status_text(result)
        assert kind not in short and any("а" <= ch <= "я" for ch in short), (kind, short)
        assert EVENTS[kind].status.format(notebook="01_head") in result.status


def test_notes_on_files_come_below_the_problems(tmp_path):
    """Notes on files cost no points: a student with notes alone is not among the problems,
    and a student's notes come after every problem of the class."""
    results = make_results(tmp_path)
    extra = StudentResult("s_extra", tasks=dict(results["s_good"].tasks),
                          notes=["не распознан файл 'solution.py' (не проверялся)"])
    results["s_extra"] = extra
    text = report.write(tmp_path, results, INFO).read_text(encoding="utf-8")
    attention = text[text.index('id="attention"'):text.index('id="glance"')]
    problems, notes = attention.split('id="file-notes"')
    for words in ("нет ноутбука 03_feedforward", "превышено время", "ошибка проверки"):
        assert words in problems
    assert "s_extra" not in problems and "принят как" not in problems
    assert "s_extra" in notes and "solution.py" in notes and "принят как 01_head" in notes
    assert "evil_1" not in notes and "нет ноутбука" not in notes
    assert report.status_text(extra) == "ок"
    only_notes = report.write(tmp_path, {"s_extra": extra}, INFO).read_text(encoding="utf-8")
    assert "ничего не требует внимания" in only_notes and "solution.py" in only_notes


def test_every_note_kind_is_worded_in_russian(tmp_path):
    """What staging notes (results.NOTES: a missing, unusable or repaired notebook, a late
    attempt) reaches the report in Russian, long and short; grades.csv keeps its English words."""
    from autograder.results import NOTES
    fields = {"reason": "not JSON", "reason_words": "файл повреждён или обрезан: это не JSON", "count": 2,
              "file": "01_head.html",
              "cls": "Head", "grade_id": "my_head", "when": "01.12.2026 10:00", "text": "старая запись",
              "encoding": "UTF-16", "chars": 1200}
    for kind in NOTES:
        result = StudentResult("s", submission=[Note("01_head", kind, fields)])
        short = report.status_text(result)
        said = " ".join(text for _, text in report.problems(result))
        assert any("а" <= ch <= "я" for ch in short) and kind not in short, (kind, short)
        assert any("а" <= ch <= "я" for ch in said), (kind, said)
        for english in ("repaired", "restored", "inserted", "missing", "invalid", "not JSON", "late", "cell"):
            assert english not in said and english not in short, (kind, english, said, short)
    repaired = StudentResult("s", submission=[Note("00_data", "export_restored", {"count": 10}),
                                              Note("01_head", "metadata_restored", {"count": 2}),
                                              Note("01_head", "export_restored", {"count": 1}),
                                              Note("02_multihead_attention", "invalid", fields)])
    assert repaired.status == ("repaired 00_data: export tags restored (10 cells); repaired 01_head: nbgrader "
                               "metadata restored by content (2 cells), export tags restored (1 cell); "
                               "invalid notebook 02_multihead_attention: not JSON")
    assert report.problems(repaired) == [
        ("repaired", "00_data исправлен: метки export восстановлены (ячеек: 10)"),
        ("repaired", "01_head исправлен: разметка nbgrader восстановлена по содержимому (ячеек: 2); "
                     "метки export восстановлены (ячеек: 1)"),
        ("invalid", "негодный файл 02_multihead_attention (файл повреждён или обрезан: это не JSON): "
                    "проверен нетронутый ноутбук, 0 за задачу")]
    assert report.status_text(repaired) == "исправлен, негодный файл"
    shown = parse(report.write(tmp_path, {"s": repaired}, INFO).read_text(encoding="utf-8")).text
    assert "01_head исправлен" in shown and "repaired" not in shown and "restored" not in shown
    unopened = StudentResult("s", submission=[Note("gpt.rar", "unopened_archive", {
        "reason": "not a zip", "reason_words": "открываются только zip-архивы"}), Note("01_head", "missing")])
    assert unopened.status == "archive gpt.rar not opened: not a zip; missing 01_head"
    assert report.problems(unopened) == [("unopened_archive", "архив gpt.rar не открыт: открываются только zip-архивы"),
                                         ("missing", "нет ноутбука 01_head: Head получает 0")]
    as_html = StudentResult("s", submission=[Note("01_head", "other_format", {"file": "01_head.html"})])
    assert as_html.status == "01_head handed in as '01_head.html', not a notebook"
    assert report.problems(as_html) == [("other_format", "01_head сдан как '01_head.html', а не ноутбук .ipynb: "
                                         "проверен нетронутый ноутбук, 0 за задачу; попросите сдать сам ноутбук "
                                         "(в Jupyter: File → Save, файл .ipynb)")]
    assert "Не найдены ноутбуки: 01_head (сдан как 01_head.html, а не .ipynb)." in moodle.comment(as_html)
    resaved = StudentResult("s", submission=[Note(name, "recoded", {"encoding": "UTF-16"}) for name in NOTEBOOKS])
    assert report.problems(resaved) == [   # one line for notebooks repaired alike, not seven
        ("repaired", f"{', '.join(NOTEBOOKS)} исправлены: текст в кодировке UTF-16, а не UTF-8, прочитан как "
                     "UTF-16; Jupyter сохраняет в UTF-8: не пересохраняйте ноутбук в другом редакторе")]


def test_a_record_written_before_the_note_kinds_still_reads():
    """state.json and the service's stored results from an older grader held plain status words."""
    old = StudentResult.from_json({"student_id": "s", "submission": ["missing 03_feedforward"]})
    assert old.status == "missing 03_feedforward" and report.problems(old) == [("as_recorded", "missing 03_feedforward")]
    again = StudentResult.from_json(StudentResult("s", submission=[Note("01_head", "missing")]).to_json())
    assert again.submission == [Note("01_head", "missing")] and again.status == "missing 01_head"
