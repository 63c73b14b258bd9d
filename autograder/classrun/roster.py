"""A roster CSV: names (and e-mail) of students whose export carries none.

Columns are matched loosely: ``id``/``student_id`` (or Moodle's ``Identifier``
with «Participant 123», ``ID number``), ``first_name``/``First name``/«Имя»,
``last_name``/``Last name``/«Фамилия», ``email``/``Email address``; a single
``Full name``/«Полное имя» column is split (the last word is the last name).
Moodle's participants export and its grading worksheet both work as rosters.
"""
import codecs
import csv
import io
import re

from . import encodings
from .collect import safe_id, split_full_name

COLUMNS = {
    "id": ("id", "student_id", "studentid", "identifier", "idnumber", "идентификатор",
           "индивидуальныйномер", "username", "логин"),
    "first_name": ("first_name", "firstname", "first", "имя"),
    "last_name": ("last_name", "lastname", "last", "surname", "фамилия"),
    "email": ("email", "emailaddress", "mail", "адресэлектроннойпочты", "электроннаяпочта"),
    "full_name": ("full_name", "fullname", "name", "полноеимя", "фио"),
}
PARTICIPANT = re.compile(r"^\s*(?:participant|участник)\s*(\S+)\s*$", re.I)


def _key(header):
    return re.sub(r"[\s_\-.]", "", header.strip().lstrip("\ufeff").lower())


def participant_id(text):
    """'Participant 123456' / 'Участник 123456' / '123456' -> '123456'."""
    match = PARTICIPANT.match(text or "")
    return (match.group(1) if match else (text or "").strip())


def read_text(path):
    """A CSV's text (UTF-8 with or without BOM, Excel's «Юникод» UTF-16, else cp1251: see
    ``encodings.file_text``) and whether it had a UTF-8 BOM; ValueError for a file that is no text."""
    raw = path.read_bytes()
    text, _ = encodings.file_text(raw)
    if text is None:
        raise ValueError("это не текст CSV, а двоичный файл (таблица Excel .xlsx?): сохраните таблицу "
                         "как CSV (Файл → Сохранить как → CSV UTF-8)")
    return text, raw.startswith(codecs.BOM_UTF8)


def problem(path):
    """Why the roster at ``path`` cannot be used (in Russian), or None."""
    try:
        read(path)
    except ValueError as exc:
        return f"--roster {path}: {exc}"
    return None


def parse(text):
    """{student id: {"first_name", "last_name", "email"}} from roster CSV text."""
    text = text.lstrip("\ufeff")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, [])
    where = {}
    for i, column in enumerate(header):
        for field, names in COLUMNS.items():
            if _key(column) in {_key(n) for n in names} and field not in where:
                where[field] = i
    if "id" not in where:
        raise ValueError("в списке студентов нет столбца id (student_id, Identifier, ...)")
    names = {}
    for row in reader:
        cell = lambda field: row[where[field]].strip() if field in where and where[field] < len(row) else ""  # noqa: E731
        sid = participant_id(cell("id"))
        if not sid:
            continue
        name = split_full_name(cell("full_name")) if cell("full_name") else {}
        name.update({k: cell(k) for k in ("first_name", "last_name", "email") if cell(k)})
        names[safe_id(sid)] = name
    return names


def read(path):
    """The roster at ``path`` (see ``parse``)."""
    return parse(read_text(path)[0])
