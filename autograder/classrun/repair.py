"""Submissions as students really save them: read any notebook Jupyter opens, restore grading.

``load`` turns the bytes of a submitted file into a clean nbformat v4 notebook
without outputs (UTF-8 BOM, UTF-16, cp1251 (``encodings.file_text``), CRLF, sources as
lists, nbformat 3, missing keys, an old save's tail after the notebook's end, a file cut
short (its whole cells) are all accepted) or raises ``InvalidNotebook`` with a short reason (English for grades.csv,
and Russian).

``restore`` makes such a notebook gradable against its release copy. Cells
re-created in Colab or VS Code carry no nbgrader metadata and no tags; they
are recognised by content instead: the solution cell is the last code cell
that defines the task's class, the test cell is the one holding the release's
visible asserts, and the ``export`` cells are those closest to the release's.
Each match gets its release cell's metadata. Without this, nbgrader's
``OverwriteCells.add_missing_cells`` fails on the whole student (it places a
missing test cell after the solution cell, and raises ``KeyError`` when that
one is missing too). What it did comes back as ``(kind, fields)``, whose words
(grades.csv's English, the report's Russian) are ``results.NOTES``.

Main-process side: standard library and nbformat only.
"""
import ast
import copy
import difflib
import json
import re

import nbformat

from ..course import TASK_OF_GRADE_ID
from ..notebooks import text_size
from . import encodings

MAX_BYTES = 100 * 2**20
# A notebook of the course has some 20 cells; each costs the grader time (20,000 one-line cells
# took one student 260 CPU-s, on one notebook): more than this is not a submission to grade.
MAX_CELLS = 2000
# ... and at most 14,000 characters of code and text, which the kernel tokenises and the feedback
# page highlights, some 30 CPU-s a megabyte (images inline in text cells do not count).
MAX_TEXT_CHARS = 1_000_000
# ... and metadata of some kilobytes (progress bars' widget state included); 37 MB of it took
# 66 CPU-s more to grade than an honest student (nbgrader copies, reads and writes it throughout).
MAX_METADATA_BYTES = 10 * 2**20
# ... nested a few levels: 500 levels made nbformat's reader overflow the stack (a RecursionError
# that stopped the whole run, from a file of one kilobyte).
MAX_METADATA_DEPTH = 64
EXPORT_TAG = "export"
MATCH_THRESHOLD = 0.6   # similarity of normalised text a by-content match needs
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_CELL_TYPES = ("code", "markdown", "raw")


class InvalidNotebook(ValueError):
    """The file cannot be graded; ``reason`` says why (grades.csv's status), ``words`` in Russian."""

    def __init__(self, reason, words):
        super().__init__(reason)
        self.reason, self.words = reason, words


def too_large():
    """A file over MAX_BYTES (checked on the bytes here, and on the file's size before reading it)."""
    return InvalidNotebook("over 100 MB", "больше 100 МБ")


def _not_a_notebook(detail=""):
    return InvalidNotebook("not a notebook" + detail, "в файле нет ячеек ноутбука Jupyter")


def _not_json():
    return InvalidNotebook("not JSON", "файл повреждён или обрезан: это не JSON")


# ---- load

def load(raw):
    """A clean v4 notebook without outputs from the submitted bytes."""
    return read(raw)[0]


def _first_document(text):
    """The JSON object a file begins with and how many characters follow it, or (None, 0) when
    it holds no whole one. For a file Jupyter refuses with «Extra data»: a save written over a
    longer one without cutting it (a sync tool, a network drive) keeps the old save's tail."""
    text = text.lstrip()
    try:
        data, end = json.JSONDecoder(strict=False).raw_decode(text)
    except (ValueError, RecursionError):
        return None, 0
    return data, len(text[end:].strip())


_CELLS_START = re.compile(r'\s*\{\s*"cells"\s*:\s*\[')


def _complete_cells(text):
    """The cells a file cut short holds whole, as nbformat writes a notebook (its cells first), or
    None: a save interrupted (a crash, a full disk, an upload cut off) leaves a file Jupyter refuses
    («Unterminated string»), whose cells before the cut are the student's work."""
    start = _CELLS_START.match(text)
    if start is None:
        return None
    decoder, position, cells = json.JSONDecoder(strict=False), start.end(), []
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            cell, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            break
        if not isinstance(cell, dict):
            return None
        cells.append(cell)
    return cells or None


def read(raw):
    """(``load``'s notebook, [(kind, fields)] of what reading it repaired: text not in UTF-8
    (``recoded``), text after the notebook's end (``trailing_text``), a file cut short (``cut_short``))."""
    if len(raw) > MAX_BYTES:
        raise too_large()
    text, encoding = encodings.file_text(raw)
    if text is None:
        raise InvalidNotebook("not text", "это не текст, а двоичные данные (документ, архив или картинка?): "
                                          "сдайте файл .ipynb, сохранённый в Jupyter")
    found = [("recoded", {"encoding": encoding})] if encoding else []
    try:
        data = json.loads(text, strict=False)
    except RecursionError:
        raise _not_json() from None
    except ValueError:
        data, after = _first_document(text)
        if after:
            found.append(("trailing_text", {"chars": after}))
        else:   # no whole document: the cells before the cut (or the damage), if any
            data = {"cells": _complete_cells(text), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            if data["cells"] is None:
                raise _not_json() from None
            found.append(("cut_short", {"count": len(data["cells"])}))
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise _not_a_notebook()
    cells = data["cells"] if "cells" in data else [cell for ws in data["worksheets"] if isinstance(ws, dict)
                                                   and isinstance(ws.get("cells"), list) for cell in ws["cells"]]
    if len(cells) > MAX_CELLS:
        raise InvalidNotebook(f"over {MAX_CELLS} cells", f"больше {MAX_CELLS} ячеек, а в ноутбуке задания их около "
                                                         "20: удалите лишние ячейки")
    kept = [data.get("metadata")] + [cell.get(key) for cell in cells if isinstance(cell, dict)
                                     for key in ("metadata", "attachments")]   # what load keeps of JSON
    if _deeper_than(kept, MAX_METADATA_DEPTH):
        raise InvalidNotebook(f"metadata nested over {MAX_METADATA_DEPTH} levels",
                              f"служебные данные (metadata) вложены глубже {MAX_METADATA_DEPTH} уровней: "
                              "перенесите решение в чистую копию выданного ноутбука")
    if sum(len(json.dumps(part)) for part in kept) > MAX_METADATA_BYTES:
        raise InvalidNotebook("over 10 MB of metadata", "больше 10 МБ служебных данных (metadata), а в ноутбуке "
                                                        "задания их несколько килобайт: перенесите решение в чистую "
                                                        "копию выданного ноутбука")
    if "cells" not in data:
        data = _upgrade_v3(data)
    metadata = data.get("metadata")
    nb = nbformat.v4.new_notebook(metadata=metadata if isinstance(metadata, dict) else {})
    seen = set()
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            raise _not_a_notebook()
        nb.cells.append(_clean_cell(cell, index, seen))
    if sum(text_size(cell.source) for cell in nb.cells) > MAX_TEXT_CHARS:
        raise InvalidNotebook("over 1,000,000 characters of code and text",
                              "больше 1 000 000 символов кода и текста, а в ноутбуке задания их не больше 14 000: "
                              "удалите лишнее")
    return nbformat.from_dict(nb), found


def _deeper_than(value, limit):
    """True if ``value`` (parsed JSON) nests lists and dicts deeper than ``limit`` (no recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _upgrade_v3(data):
    """nbformat 3 (worksheets) as a v4 dict."""
    worksheets = data.get("worksheets")
    if not isinstance(worksheets, list) or not all(
            isinstance(ws, dict) and isinstance(ws.get("cells", []), list) for ws in worksheets):
        raise _not_a_notebook()
    for ws in worksheets:
        ws.setdefault("cells", [])
        for cell in ws["cells"]:
            if not isinstance(cell, dict):
                raise _not_a_notebook()
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = {}
            for key in ("input", "source"):
                if isinstance(cell.get(key), list):
                    cell[key] = "".join(map(str, cell[key]))
    if data.get("nbformat") not in (1, 2, 3):
        data["nbformat"] = 3
    data.setdefault("nbformat_minor", 0)
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    try:
        return nbformat.convert(nbformat.from_dict(data), 4)
    except Exception as exc:
        raise _not_a_notebook(f" ({type(exc).__name__})") from None


def _text(value):
    """A cell source as one string with LF line ends."""
    if value is None:
        value = ""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        value = "".join(value)
    if not isinstance(value, str):
        raise _not_a_notebook()
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _clean_cell(cell, index, seen):
    """A valid v4 cell: source as text, metadata a dict, no outputs, a unique id."""
    kind = cell.get("cell_type", "code")
    kind = kind if kind in _CELL_TYPES else "raw"
    metadata = cell.get("metadata")
    metadata = copy.deepcopy(metadata) if isinstance(metadata, dict) else {}
    tags = metadata.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        del metadata["tags"]
    if "nbgrader" in metadata and not isinstance(metadata["nbgrader"], dict):
        del metadata["nbgrader"]
    source = _text(cell.get("source"))
    new = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
           "raw": nbformat.v4.new_raw_cell}[kind](source=source, metadata=metadata)
    if kind != "code" and isinstance(cell.get("attachments"), dict):
        new.attachments = cell["attachments"]
    cell_id = cell.get("id")
    if not (isinstance(cell_id, str) and _CELL_ID.match(cell_id)) or cell_id in seen:
        cell_id = f"cell-{index}"
        while cell_id in seen:
            cell_id += "x"
    seen.add(cell_id)
    new.id = cell_id
    return new


# ---- recognising cells by content

def _code_body(source):
    """Top-level statements of ``source``, or None when it does not parse."""
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError):
        pass
    # IPython magics and shell lines are not Python: blank them and try again.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines)).body
    except (SyntaxError, ValueError):
        return None


def _defines_in(statements, name):
    for node in statements:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and _defines_in(inner, name):
                return True
    return False


def defines_class(source, name):
    """Does this cell define class ``name``? (A cell that does not parse counts by a regex.)"""
    body = _code_body(source)
    if body is not None:
        return _defines_in(body, name)
    return re.search(rf"^[ \t]*class[ \t]+{re.escape(name)}\b", source, re.M) is not None


def _lines(source):
    """Code lines without blanks, comments and extra spaces."""
    out = []
    for line in source.split("\n"):
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _scores(source, release_source):
    """(similarity, text ratio) of a student's cell to a release cell, each 0..1."""
    want, got = _lines(release_source), _lines(source)
    if not want or not got:
        return 0.0, 0.0
    ratio = difflib.SequenceMatcher(None, "\n".join(want), "\n".join(got), autojunk=False).ratio()
    present = set(got)
    kept = sum(line in present for line in want) / len(want)
    return max(ratio, kept), ratio


def similarity(source, release_source):
    """How close a student's cell is to a release cell, 0..1 (text ratio or share of lines kept)."""
    return _scores(source, release_source)[0]


def _best_match(cells, candidates, release_source, preferred=()):
    """Index of the candidate most like ``release_source``, or None below the threshold.

    Ranked by: in ``preferred``, similarity, text ratio, then the earlier cell.
    """
    want = _lines(release_source)
    first_tier = sorted(i for i in candidates if i in preferred) if preferred else sorted(candidates)
    if want:  # an unchanged cell of the first tier ranks first: no text comparison needed
        exact = next((i for i in first_tier if _lines(cells[i].source) == want), None)
        if exact is not None:
            return exact
    best, best_key = None, None
    for index in candidates:
        score, ratio = _scores(cells[index].source, release_source)
        key = (index in preferred, score, ratio, -index)
        if score >= MATCH_THRESHOLD and (best_key is None or key > best_key):
            best, best_key = index, key
    return best


# ---- restore

def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _set_release_metadata(cell, release_cell):
    """Give ``cell`` the nbgrader metadata of its release cell; True if it changed."""
    before = {k: cell.metadata.get(k) for k in ("nbgrader", "deletable", "editable")}
    for key in ("nbgrader", "deletable", "editable"):
        cell.metadata.pop(key, None)
        if key in release_cell.metadata:
            cell.metadata[key] = copy.deepcopy(release_cell.metadata[key])
    return before != {k: cell.metadata.get(k) for k in ("nbgrader", "deletable", "editable")}


def _release_copy(release_cell, nb):
    """A copy of a release cell for ``nb``, with an id no cell of ``nb`` has."""
    cell = nbformat.from_dict(copy.deepcopy(release_cell))
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    taken = {c.get("id") for c in nb.cells}
    cell.id = next(f"restored-{n}" for n in range(len(taken) + 1) if f"restored-{n}" not in taken)
    return cell


def _drop_foreign_ids(nb, known):
    """Unknown grade ids become plain cells; of duplicated ids the last keeps it."""
    notes, last = [], {}
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id")
        if grade_id not in known:
            del cell.metadata["nbgrader"]
            if grade_id is not None:
                notes.append(("foreign_cell", {"grade_id": grade_id}))
            continue
        if grade_id in last:
            del nb.cells[last[grade_id]].metadata["nbgrader"]
            notes.append(("repeated_cell", {"grade_id": grade_id}))
        last[grade_id] = index
    return notes, last


def restore(nb, release_nb):
    """Make ``nb`` gradable against ``release_nb`` (in place); return what was repaired,
    ``[(kind, fields)]`` (``results.NOTES``)."""
    release = {_grade_id(c): c for c in release_nb.cells if _grade_id(c)}
    notes, found = _drop_foreign_ids(nb, set(release))
    restored = inserted = 0
    solution_id = next((g for g in release if g in TASK_OF_GRADE_ID
                        and TASK_OF_GRADE_ID[g].solution_id == g), None)
    if solution_id is not None:
        task = TASK_OF_GRADE_ID[solution_id]
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        # The solution: the marked cell if it defines the class, else the last that does.
        defining = [i for i in code if _grade_id(nb.cells[i]) in (None, solution_id)
                    and defines_class(nb.cells[i].source, task.cls)]
        solution = found.get(solution_id)
        if defining and (solution is None or solution not in defining):
            if solution is not None:
                del nb.cells[solution].metadata["nbgrader"]
            solution = defining[-1]
        # The tests: the marked cell, else the one holding the release's visible asserts.
        tests = found.get(task.tests_id)
        if tests is None and task.tests_id in release:
            others = [i for i in code if i != solution and _grade_id(nb.cells[i]) is None]
            tests = _best_match(nb.cells, others, release[task.tests_id].source)
        for index, grade_id in ((solution, solution_id), (tests, task.tests_id)):
            if index is not None and grade_id in release:
                restored += _set_release_metadata(nb.cells[index], release[grade_id])
        if solution is None:
            where = tests if tests is not None else min(
                release_nb.cells.index(release[solution_id]), len(nb.cells))
            nb.cells.insert(where, _release_copy(release[solution_id], nb))
            notes.append(("class_inserted", {"cls": task.cls}))
            solution = where
            tests = None if tests is None else tests + 1
        if tests is None and task.tests_id in release:
            nb.cells.insert(solution + 1, _release_copy(release[task.tests_id], nb))
            inserted += 1
    if restored:
        notes.insert(0, ("metadata_restored", {"count": restored}))
    if inserted:
        notes.append(("tests_inserted", {}))
    tagged = _restore_export_tags(nb, release_nb)
    if tagged:
        notes.append(("export_restored", {"count": tagged}))
    return notes


def _restore_export_tags(nb, release_nb):
    """Tag ``export`` the cells most like the release's exported cells; return how many."""
    candidates = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _grade_id(c) is None]
    added = 0
    for release_cell in release_nb.cells:
        if release_cell.cell_type != "code" or EXPORT_TAG not in release_cell.metadata.get("tags", []):
            continue
        tagged = {i for i in candidates if EXPORT_TAG in nb.cells[i].metadata.get("tags", [])}
        index = _best_match(nb.cells, candidates, release_cell.source, tagged)
        if index is None:
            continue
        candidates.remove(index)
        tags = nb.cells[index].metadata.setdefault("tags", [])
        if EXPORT_TAG not in tags:
            tags.append(EXPORT_TAG)
            added += 1
    return added
