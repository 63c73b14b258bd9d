"""Grades back into Moodle: the assignment's grading worksheet, filled in.

``fill`` takes the worksheet downloaded from the assignment («Download grading
worksheet», English or Russian headers) and fills ``Grade`` and ``Feedback
comments`` of the students graded here, matched by participant id
(«Participant 123456» / «Участник 123456» in the worksheet, the ``_123456_``
of the export's folder names). Every other row, column and cell is kept, and
so are the encoding (a BOM if there was one), the delimiter, the line ends and
the quoting. Without a worksheet ``fresh`` writes one Moodle can import.
"""
import csv
import io
import re

from ..course import TASK, TASK_KEYS, TOTAL_POINTS
from .roster import PARTICIPANT, read_text

# The worksheet's headers, as Moodle's language packs spell them (mod/assign, core, assignfeedback_comments).
HEADERS = {
    "en": {"id": "Identifier", "name": "Full name", "email": "Email address", "status": "Status",
           "grade": "Grade", "max": "Maximum grade", "changeable": "Grade can be changed",
           "modified_submission": "Last modified (submission)", "modified_grade": "Last modified (grade)",
           "comments": "Feedback comments", "participant": "Participant", "no": "No", "yes": "Yes"},
    "ru": {"id": "Идентификатор", "name": "Полное имя", "email": "Адрес электронной почты",
           "status": "Состояние", "grade": "Оценка", "max": "Максимальная оценка",
           "changeable": "Оценка может быть изменена", "modified_submission": "Последнее изменение (ответ)",
           "modified_grade": "Последнее изменение (оценка)", "comments": "Отзыв в виде комментария",
           "participant": "Участник", "no": "Нет", "yes": "Да"},
}
FILE = "moodle_grades.csv"


def _norm(text):
    return text.strip().lstrip("\ufeff").casefold()


def comment(result):
    """Short plain-text feedback: the points and the named mistakes."""
    parts = [f"Автопроверка: {result.total:g} из {TOTAL_POINTS}."]
    for key in TASK_KEYS:
        task = result.task(key)
        named = [text for k, text in task.mistakes if k != "not_implemented"]
        if task.points < TASK[key].points or named:
            line = f"{TASK[key].cls}: {task.points:g} из {TASK[key].points}"
            parts.append(line + (" — " + " ".join(named) if named else "") + ".")
    missing = [note.notebook + (f" (сдан как {note.fields['file']}, а не .ipynb)" if note.kind == "other_format" else "")
               for note in result.submission if note.kind in ("missing", "other_format")]
    if missing:
        parts.append("Не найдены ноутбуки: " + ", ".join(missing) + ".")
    parts.append("Подробный отзыв — в файлах отзывов по каждому ноутбуку.")
    return " ".join(parts)


def _number(value, decimal):
    return f"{value:.2f}".replace(".", decimal)


def _parse_number(text):
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def _language(header):
    names = {_norm(h) for h in header}
    for lang, words in HEADERS.items():
        if _norm(words["id"]) in names and _norm(words["grade"]) in names:
            return lang
    raise ValueError("это не лист оценок Moodle: нет столбцов Identifier/Идентификатор и Grade/Оценка")


def worksheet_problem(path):
    """Why the worksheet at ``path`` cannot be filled in (in Russian), or None: checked before
    grading, since it is filled after."""
    try:
        fill(read_text(path)[0], {})   # what filling it after grading reads, with no one to fill in
    except (ValueError, csv.Error) as exc:
        return f"--moodle-worksheet {path}: {exc}"
    return None


def _dialect(text):
    first = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    cells = first.rstrip("\r").split(delimiter)
    quote_all = all(c.startswith('"') and c.endswith('"') for c in cells if c)
    ending = "\r\n" if "\r\n" in text else "\n"
    return delimiter, (csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL), ending


def fill(text, results):
    """(filled worksheet text, [ids of the worksheet that were filled], [ids graded but not in it])."""
    text = text.lstrip("\ufeff")
    delimiter, quoting, ending = _dialect(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise ValueError("лист оценок пуст")
    header = rows[0]
    words = HEADERS[_language(header)]
    where = {key: next((i for i, h in enumerate(header) if _norm(h) == _norm(word)), None)
             for key, word in words.items()}
    if where["comments"] is None:
        header.append(words["comments"])
        where["comments"] = len(header) - 1
        for row in rows[1:]:
            row.extend([""] * (len(header) - len(row)))
    filled = []
    for row in rows[1:]:
        if len(row) <= where["id"]:
            continue
        match = PARTICIPANT.match(row[where["id"]])
        sid = match.group(1) if match else None
        if sid not in results:
            continue
        if where["changeable"] is not None and _norm(row[where["changeable"]]) == _norm(words["no"]):
            continue
        row.extend([""] * (len(header) - len(row)))
        maximum = _parse_number(row[where["max"]]) if where["max"] is not None else None
        decimal = "," if where["max"] is not None and "," in row[where["max"]] else "."
        grade = results[sid].total * ((maximum or TOTAL_POINTS) / TOTAL_POINTS)
        row[where["grade"]] = _number(grade, decimal)
        row[where["comments"]] = comment(results[sid])
        filled.append(sid)
    missing = sorted(set(results) - set(filled))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=ending)
    writer.writerows(rows)
    return buffer.getvalue(), filled, missing


def inert(text):
    """``text`` as a spreadsheet shows it, never as a formula: a name from the LMS export that
    starts with = + - @ (or a tab or return) gets an apostrophe first, as OWASP advises against
    CSV injection (Moodle matches rows by their identifier, not by name)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def fresh(results, lang="en"):
    """A new worksheet for the students with Moodle participant ids (digits); text and their ids."""
    words = HEADERS[lang]
    columns = ("id", "name", "email", "status", "grade", "max", "changeable",
               "modified_submission", "modified_grade", "comments")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([words[c] for c in columns])
    ids = []
    for sid, result in results.items():
        if not re.fullmatch(r"\d+", sid):
            continue
        name = result.name or {}
        full = " ".join(p for p in (name.get("first_name", ""), name.get("last_name", "")) if p)
        writer.writerow([f"{words['participant']} {sid}", inert(full), inert(name.get("email", "")), "",
                         _number(result.total, "."),
                         _number(TOTAL_POINTS, "."), words["yes"], "", "", comment(result)])
        ids.append(sid)
    return buffer.getvalue(), ids


def write(out, results, worksheet=None):
    """Write OUT/moodle_grades.csv; return (path, filled ids, graded ids left out, held ids).

    Students whose grading failed (``result.error``) are held back: no grade from
    a failed run reaches Moodle; their rows stay as they were.
    """
    held = sorted(sid for sid, result in results.items() if result.error)
    results = {sid: result for sid, result in results.items() if not result.error}
    if worksheet is not None:
        text, bom = read_text(worksheet)
        filled_text, filled, missing = fill(text, results)
    else:
        (filled_text, filled), bom = fresh(results), True
        missing = sorted(set(results) - set(filled))
    path = out / FILE
    path.write_bytes((("\ufeff" if bom else "") + filled_text).encode("utf-8"))
    return path, filled, missing, held
