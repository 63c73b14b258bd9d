"""Turn an LMS export (folder or zip) into {student_id: {notebook: path}}.

Accepted layouts: one folder per student (``<student_id>/<notebook>.ipynb``),
Moodle's ``<Full Name>_<id>_assignsubmission_file_/<notebook>.ipynb``, and flat
files ``<lastname>_<firstname>_<id>_<notebook>.ipynb`` (Moodle's, Canvas's, Blackboard's and
Google Classroom's too, ``_flat_student``); one student's folder given alone
(notebooks under their own names) is that student; a zip a student handed in is opened
(``_opened``). Slightly renamed
notebooks (``01_head (1).ipynb``, ``01_Head.ipynb``) are matched and noted; one renamed past
recognition is matched by its content (``_match_by_content``).
The rest of the student kit (``course.kit_files``: the lesson, helpers, data, README,
pictures) and what editors and systems leave behind (hidden files, ``__pycache__``)
are ignored silently; only files that belong to nothing are noted.
Names in Moodle folders («First Last») and flat names become ``Student.name``;
a roster (``roster.py``) fills or corrects them.
"""
import dataclasses
import difflib
import functools
import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile
import unicodedata
import zipfile
import zlib

from ..course import ASSIGNMENT, NOTEBOOKS, RELEASE, STUB, kit_files
from . import encodings

MOODLE = re.compile(r"^(?P<name>.*)_(?P<id>[^_]+)_assignsubmission_\w*$")
# ... and Moodle's flat names (a download without folders): <Full Name>_<id>_assignsubmission_file_<file>
MOODLE_FLAT = re.compile(r"^(?P<prefix>.*_[^_]+_assignsubmission_[a-z]+)_(?P<file>.+)$")
_KEYS = {re.sub(r"[^a-z0-9]", "", name.lower()): name for name in NOTEBOOKS}
MAX_ZIP_BYTES = 2 * 2**30
TOO_LARGE = "архив больше 2 ГиБ после распаковки"
# Left by systems and tools, not by the student: hidden files and folders (.ipynb_checkpoints,
# .DS_Store, .virtual_documents, ._* of macOS), caches, Windows' own files and download marks.
SYSTEM_FOLDERS = {"__pycache__", "__MACOSX"}
SYSTEM_FILES = {"thumbs.db", "desktop.ini", "timestamp.txt"}   # the last: nbgrader's, beside a submission
SHOWN_UNKNOWN = 5  # file names a note lists; the rest are counted
# "README (1).md", browsers' second copy; "01_head-1.ipynb", Safari's and Canvas's
_COPY = re.compile(r"\s*(?:\(\d+\)|-\d+)(?=\.[^.]*$|$)")
# Editors' copies of a notebook: Jupyter's «Make a Copy» (01_head-Copy1), Windows Explorer's
# (01_head - Copy, 01_head - копия (2)), Colab's «Save a copy in Drive» (Copy of 01_head)
_EDITOR_COPY = re.compile(r"^(?:copy of |копия )|\s*(?:-copy\d*|[-—–]\s*(?:copy|копия)(?:\s*\(\d+\))?)(?=\.[^.]*$|$)",
                          re.I)
# the line of the release's stub a task's solution replaces: a notebook holding it is untouched there
_STUB_LINE = STUB.splitlines()[1]
# Canvas's flat names: <lastnamefirstname>_[late_]<user id>_<file id>_<file>; the user id is the student
CANVAS = re.compile(r"^(?P<name>[^_]+)_(?:late_)?(?P<id>\d+)(?:_\d+)?$", re.I)
# Blackboard's: <assignment>_<username>_attempt_<YYYY-MM-DD-hh-mm-ss>[_<file>], and a .txt per attempt
# whose first line is «Name: First Last (username)»; a later attempt sorts after an earlier one
BLACKBOARD = re.compile(r"^(?P<prefix>.+_(?P<id>[^_]+)_attempt_\d{4}(?:-\d{2}){5})(?:_(?P<file>.+)|\.txt)?$")
BLACKBOARD_NAME = re.compile(r"^Name:\s*(?P<name>.+?)\s*(?:\([^()]*\))?\s*$", re.M)


def _kit_names():
    """Lower-case names by which a kit file other than the assignment's notebooks is known:
    its own name and, for the flat names of LMSs, its path with ``_`` for ``/``; longest first."""
    names = set()
    for rel in kit_files():
        if rel.suffix == ".ipynb" and rel.stem in NOTEBOOKS:
            continue
        names.update({rel.name.lower(), "_".join(rel.parts).lower()})
    return sorted(names, key=len, reverse=True)


KIT_NAMES = _kit_names()


@dataclasses.dataclass
class Student:
    student_id: str
    notebooks: dict = dataclasses.field(default_factory=dict)  # name -> path
    notes: list = dataclasses.field(default_factory=list)
    name: dict = dataclasses.field(default_factory=dict)  # first_name, last_name, email
    unopened: list = dataclasses.field(default_factory=list)  # (archive, English reason, Russian words)
    unmatched: list = dataclasses.field(default_factory=list)  # (path, shown) of notebooks no name matched
    other_formats: dict = dataclasses.field(default_factory=dict)  # notebook -> shown name of its .html/.py/.pdf


def shown_text(name):
    """A name from the file system as text to show and store: bytes that were not UTF-8 (kept by
    Python as surrogates) decoded (``encodings.name_text``), control and direction characters dropped."""
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        name = encodings.name_text(os.fsencode(name))
    return "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")


def split_full_name(full):
    """{"first_name", "last_name"} of «First Last»: the last word is the last name."""
    words = shown_text(full).replace("_", " ").split()
    if not words:
        return {}
    if len(words) == 1:
        return {"first_name": "", "last_name": words[0]}
    return {"first_name": " ".join(words[:-1]), "last_name": words[-1]}


def safe_id(text):
    """An id nbgrader and file systems accept; stable for the same text."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    if cleaned == text:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"{cleaned or 'student'}_{digest}"


def _without_copy_marks(name):
    """``name`` without a browser's or an editor's copy mark ("01_head (1)", "01_head-Copy1")."""
    return _COPY.sub("", _EDITOR_COPY.sub("", name))


def match_notebook(filename):
    """Canonical notebook name for a file name, or None."""
    stem = re.sub(r"\.ipynb$", "", filename, flags=re.I)
    stem = _without_copy_marks(stem).strip()                    # "01_head (1)", "01_head-1", "01_head-Copy1"
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    if key in _KEYS:
        return _KEYS[key]
    for known, name in _KEYS.items():                          # "..._id_01_head"
        if key.endswith(known):
            return name
    close = difflib.get_close_matches(key, list(_KEYS), n=1, cutoff=0.75)
    return _KEYS[close[0]] if close else None


def name_rank(filename, name, prefix=""):
    """How surely the file ``filename`` is the notebook ``name``: 2 its very name, 1 a browser's
    copy or another case ("01_head (1)", "01_Head"), 0 a name only like it ("01_head_old").
    Of two files for one notebook the surer is graded (the later in name order if as sure)."""
    own = filename[len(prefix):].lstrip("_- ")
    if own == name + ".ipynb":
        return 2
    return 1 if _without_copy_marks(own).lower() == name + ".ipynb" else 0


def untouched(path):
    """The notebook at ``path`` still holds the release's stub of its task (as JSON writes it, the
    Russian as it is or escaped): its solution was not written there. False when unreadable."""
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    return _STUB_LINE.encode("utf-8") in raw or json.dumps(_STUB_LINE)[1:-1].encode("ascii") in raw


def graded_first(first, second, name, prefix=""):
    """(True when ``first`` rather than ``second`` is the file of notebook ``name`` to grade, True
    when the student's work decided it): the one with the work over an untouched copy of the
    release (a student who worked in «01_head-Copy1.ipynb» and handed in both), else the surer
    name (``name_rank``). Each file is read once."""
    first_untouched, second_untouched = untouched(first), untouched(second)
    if first_untouched != second_untouched:
        return second_untouched, True
    return name_rank(first.name, name, prefix) > name_rank(second.name, name, prefix), False


def loose_match(filename):
    """The notebook a name begins with, a word added after it ("01_head_ivanov", "01-head-final"),
    or None. Taken only for a notebook the submission has no other file for (``_add_files``)."""
    stem = re.sub(r"\.ipynb$", "", filename, flags=re.I)
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    found = [name for known, name in _KEYS.items() if key.startswith(known) and not key[len(known):][:1].isdigit()]
    return found[0] if len(found) == 1 else None


def system_file(relative):
    """True for what systems and tools leave in a folder (``relative``: a path within a submission)."""
    parts = pathlib.PurePath(relative).parts
    name = parts[-1].lower() if parts else ""
    return (any(p.startswith(".") or p in SYSTEM_FOLDERS for p in parts) or name in SYSTEM_FILES
            or name.endswith("zone.identifier"))


def kit_prefix(filename):
    """For the file name of a kit file (not a notebook of the assignment), what precedes the kit's
    name (``""`` for the bare name, ``"petrova_anna_42"`` for a flat LMS name); else None."""
    name = _COPY.sub("", filename).lower()
    for known in KIT_NAMES:
        if name == known:
            return ""
        if name.endswith(known) and name[-len(known) - 1] in "_- ":
            return _COPY.sub("", filename)[: -len(known)].rstrip("_- ")
    return None


def archive_problem(archive, notebooks_required=True):
    """Why the zip ``archive`` cannot be read whole (in Russian), or None: every member is read and
    its checksum checked before any work, so a damaged download stops the run, not its middle."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            locked = next((i.filename for i in infos if i.flag_bits & 0x1), None)
            if locked:
                return f"{archive}: файл {locked!r} в архиве зашифрован паролем: сохраните архив без пароля"
            if notebooks_required and not any(i.filename.lower().endswith(".ipynb") for i in infos):
                return f"{archive}: в архиве нет ни одного ноутбука (.ipynb)"
            if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
                return f"{archive}: {TOO_LARGE}"
            bad = zf.testzip()
            if bad:
                return f"{archive}: файл {bad!r} в архиве повреждён (не сходится контрольная сумма): скачайте архив заново"
    except NotImplementedError as exc:
        return f"{archive}: архив сжат неподдерживаемым способом ({exc}): пересохраните его обычным zip"
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        return f"{archive}: архив повреждён ({exc}): скачайте его заново"
    return None


def extract(archive, dest):
    """Extract a zip safely: no absolute paths, no '..', no links, size capped."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = _member_parts(info)
            if not parts:
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError(TOO_LARGE)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def _member_parts(info):
    """The path parts of a zip member to write, or None: no absolute paths, no '..', no links,
    no folders; names not marked UTF-8 decoded (``encodings.name_text``)."""
    name = info.filename
    if not info.flag_bits & 0x800 and not name.isascii():   # not marked UTF-8: Python read cp437
        name = encodings.name_text(name.encode("cp437"))
    parts = [p for p in pathlib.PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts or info.is_dir() or (info.external_attr >> 16) & 0o170000 == 0o120000:
        return None
    return parts


def collect(root, roster=None, unpack=None):
    """Students found under folder ``root``, sorted by id; names from ``roster`` ({id: name}) win.
    With ``unpack`` (a folder to write in), the notebooks of a zip a student handed in are read
    from it (``_opened``); without, such a zip is a file that belongs to nothing."""
    root = pathlib.Path(root)
    students = {}
    unknown = {}  # student id -> files that belong to nothing
    flat = [p for p in root.iterdir() if p.is_file() and not system_file(p.name)]
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if len(folders) == 1 and not flat and not _student_folder(folders[0]):
        return collect(folders[0], roster, unpack)            # zip with one top folder
    # nbgrader's own layout, <student>/gpt/*.ipynb, of one student: the student is this folder
    alone = len(folders) == 1 and not flat and folders[0].name == ASSIGNMENT and _student_folder(folders[0])
    for folder in sorted(folders):
        moodle = MOODLE.match(folder.name)
        sid = safe_id(moodle.group("id") if moodle else root.name if alone else folder.name)
        student = students.setdefault(sid, Student(sid))
        if moodle and not student.name:
            student.name = split_full_name(moodle.group("name"))
        files = [(path, str(path.relative_to(folder))) for path in sorted(folder.rglob("*"))]
        _add_files(student, _opened(files, student, unpack, unknown.setdefault(sid, [])), unknown[sid])
    others = []
    assignment = _blackboard_assignment(p.name for p in flat)
    for path in sorted(flat):                                 # notebooks make the flat students
        if not path.name.lower().endswith(".ipynb"):
            others.append(path)
            continue
        kit = kit_prefix(path.name)
        if kit == "":                                         # the kit's lesson, nobody's
            continue
        notebook = match_notebook(path.name)
        prefix = kit if kit is not None else _prefix(path.name, notebook)
        # a notebook under its own name (no LMS prefix): the folder given is one student's
        sid, name = _flat_student(prefix, assignment) if prefix else (safe_id(root.name if notebook else path.stem), {})
        student = students.setdefault(sid, Student(sid))
        student.name = student.name or name
        if kit is None:
            _add_files(student, [(path, path.name)], unknown.setdefault(sid, []), prefix)
    for path in others:                                       # other files join a flat student
        kit = kit_prefix(path.name)
        prefix = kit if kit is not None else _prefix(path.name, None)
        sid, name = _flat_student(prefix, assignment) if prefix else (safe_id(root.name), {})
        if kit is None and BLACKBOARD.match(path.name) and path.suffix.lower() == ".txt":
            student = students.get(sid)                        # Blackboard's record of the attempt
            if student is not None and not student.name:
                student.name = _blackboard_name(path)
        elif kit is None and path.suffix.lower() == ".zip" and prefix:
            student = students.setdefault(sid, Student(sid))   # an archive handed in (flat name)
            student.name = student.name or name
            _add_files(student, _opened([(path, path.name)], student, unpack, unknown.setdefault(sid, [])),
                       unknown[sid])
        elif kit is None and sid in students:
            unknown.setdefault(sid, []).append(path.name)
    for sid, student in students.items():
        _match_by_content(student, unknown.setdefault(sid, []))
        student.other_formats = {name: shown for name, shown in student.other_formats.items()
                                 if name not in student.notebooks}   # the reason it is missing (staging)
        unknown[sid] = [shown for shown in unknown[sid] if shown not in student.other_formats.values()]
        if unknown.get(sid):
            student.notes.append(unknown_note(unknown[sid]))
        if roster and sid in roster:
            student.name = {**student.name, **{k: v for k, v in roster[sid].items() if v}}
    return dict(sorted(students.items()))


# A notebook renamed past recognition («hw1.ipynb», «ДЗ Иванов.ipynb») is the course notebook most
# of whose lines it holds, when that one is missing and no other comes close.
CONTENT_MATCH = 0.5
CONTENT_MARGIN = 0.15
MAX_CONTENT_BYTES = 20 * 2**20


def _lines(raw):
    """The set of stripped non-empty lines of a notebook's cells (JSON bytes), or None."""
    text, _ = encodings.file_text(raw)
    try:
        cells = json.loads(text).get("cells")
    except (TypeError, ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(cells, list):
        return None
    found = set()
    for cell in cells:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        source = "".join(source) if isinstance(source, list) else source
        if isinstance(source, str):
            found.update(line.strip() for line in source.splitlines() if line.strip())
    return found


@functools.lru_cache(maxsize=1)
def _release_lines():
    """{notebook: its own lines} of the release (the lines every notebook shares, such as the setup
    cell's, left out)."""
    lines = {name: _lines((RELEASE / f"{name}.ipynb").read_bytes()) or set() for name in NOTEBOOKS}
    shared = set.intersection(*lines.values())
    return {name: own - shared for name, own in lines.items()}


def _match_by_content(student, unknown):
    """Take each notebook no name matched as the missing course notebook whose lines it mostly
    holds (``CONTENT_MATCH``, ahead of the next by ``CONTENT_MARGIN``), with a note."""
    if not student.unmatched or not set(NOTEBOOKS) - set(student.notebooks):
        return
    release = _release_lines()
    for path, shown in student.unmatched:
        missing = [name for name in NOTEBOOKS if name not in student.notebooks]
        if not missing or path.stat().st_size > MAX_CONTENT_BYTES:
            continue
        lines = _lines(path.read_bytes())
        if not lines:
            continue
        scores = sorted(((len(release[name] & lines) / max(1, len(release[name])), name) for name in missing),
                        reverse=True)
        best, name = scores[0]
        if best >= CONTENT_MATCH and (len(scores) == 1 or best - scores[1][0] >= CONTENT_MARGIN):
            student.notebooks[name] = path
            student.notes.append(f"{shown!r} принят как {name} (по содержимому)")
            unknown.remove(shown)


def unknown_note(shown):
    """The note on a student's files that belong to nothing: notebooks first, at most a few named."""
    shown = sorted(shown, key=lambda s: (not s.lower().endswith(".ipynb"), s))
    if len(shown) == 1:
        return f"не распознан файл {shown[0]!r} (не проверялся)"
    listed = ", ".join(repr(s) for s in shown[:SHOWN_UNKNOWN])
    more = f" и ещё {len(shown) - SHOWN_UNKNOWN}" if len(shown) > SHOWN_UNKNOWN else ""
    return f"не распознаны файлы ({len(shown)}, не проверялись): {listed}{more}"


OTHER_ARCHIVES = (".rar", ".7z", ".tar", ".tar.gz", ".tgz", ".gz")
# What Jupyter's «Download as» and printing make of a notebook: no notebook to grade
OTHER_FORMATS = (".html", ".htm", ".py", ".pdf", ".txt", ".md", ".docx", ".json")


def exported_notebook(filename):
    """The course notebook ``filename`` is a copy of in another format («01_head.html», «01_head
    (1).py», «Copy of 01_head.py»: Jupyter's «Download as», printing, an editor's copy), or None."""
    stem, suffix = os.path.splitext(filename)
    if suffix.lower() not in OTHER_FORMATS:
        return None
    name = match_notebook(stem + ".ipynb")
    return name if name and _without_copy_marks(stem).strip().lower() == name.lower() else None


def _opened(files, student, unpack, unknown):
    """``files`` with each zip a student handed in (their folder zipped, as students upload it)
    replaced by its notebooks, unpacked under ``unpack`` and shown as ``archive.zip/01_head.ipynb``;
    its other members, not unpacked, go to ``unknown`` unless system or kit files (``_add_files``).
    A zip that cannot be read, and an archive of another kind, go to ``student.unopened`` (a
    problem of the submission: staging's ``unopened_archive`` note)."""
    if unpack is None:
        return files
    opened = []
    for path, shown in files:
        lower = path.name.lower()
        if not path.is_file() or path.is_symlink() or system_file(shown):
            opened.append((path, shown))
        elif lower.endswith(".zip"):
            problem = archive_problem(path, notebooks_required=False)
            if problem:
                student.unopened.append((shown, "cannot be read", problem.split(": ", 1)[-1]))
                continue
            pathlib.Path(unpack).mkdir(parents=True, exist_ok=True)
            dest = pathlib.Path(tempfile.mkdtemp(prefix=f"{student.student_id}-", dir=unpack))
            for member, inner in _extract_notebooks(path, dest):
                if member.is_file():
                    opened.append((member, f"{shown}/{inner}"))
                elif not system_file(inner) and kit_prefix(member.name) != "":
                    unknown.append(f"{shown}/{inner}")
        elif lower.endswith(OTHER_ARCHIVES):
            student.unopened.append((shown, "not a zip", "открываются только zip-архивы; попросите сдать .zip "
                                                         "или сами ноутбуки .ipynb"))
        else:
            opened.append((path, shown))
    return opened


def _extract_notebooks(archive, dest):
    """[(path, name in the archive)] of a zip's safe members (``_member_parts``): notebooks written
    under ``dest``, the others not written (their path is no file)."""
    found = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            parts = _member_parts(info)
            if not parts:
                continue
            inner = "/".join(parts)
            target = dest.joinpath(*parts)
            if inner.lower().endswith(".ipynb") and not system_file(inner):
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            found.append((target, inner))
    return found


def _student_folder(folder):
    return any(p.suffix.lower() == ".ipynb" for p in folder.iterdir())


def _flat_student(prefix, assignment=""):
    """(student id, name) of a flat name's student part: Moodle's ``Anna Petrova_123_assignsubmission_file``,
    Canvas's ``petrovaanna_[late_]123_456``
    (the user id; the name as Canvas writes it), else ``lastname_firstname_id`` (the last word is
    the id; a name from three words or more), or a full name alone («Anna Petrova - 01_head»).
    Blackboard's ``<assignment>_<username>_attempt_<time>``: the username, whole when
    ``assignment`` (``_blackboard_assignment``) is known, else its last ``_`` word."""
    moodle = MOODLE.match(prefix)
    if moodle:
        return safe_id(moodle.group("id")), split_full_name(moodle.group("name"))
    blackboard = BLACKBOARD.match(prefix)
    if blackboard:
        owner = prefix[:prefix.rindex("_attempt_")]
        return safe_id(owner[len(assignment):] if assignment and owner.startswith(assignment)
                       else blackboard.group("id")), {}
    canvas = CANVAS.match(prefix)
    if canvas:
        return safe_id(canvas.group("id")), {"first_name": "", "last_name": shown_text(canvas.group("name"))}
    parts = prefix.split("_")
    name = {"first_name": shown_text(" ".join(parts[1:-1])), "last_name": shown_text(parts[0])} if len(parts) >= 3 else {}
    if len(parts) == 1 and " " in prefix.strip():     # «Anna Petrova - 01_head.ipynb» (Google Classroom)
        name = split_full_name(prefix)
    return safe_id(parts[-1]), name


def _blackboard_assignment(names):
    """The ``<assignment>_`` Blackboard's flat names begin with, read off two students' names (a
    username may hold ``_``), or "" (one student, or no Blackboard names)."""
    owners = {m.group("prefix")[:m.group("prefix").rindex("_attempt_")] for m in map(BLACKBOARD.match, names) if m}
    if len(owners) < 2:
        return ""
    common = os.path.commonprefix(sorted(owners))
    return common[:common.rfind("_") + 1]


def _blackboard_name(path):
    """{"first_name", "last_name"} from the «Name: First Last (username)» line of Blackboard's
    attempt record, or {}."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return {}
    found = BLACKBOARD_NAME.search(head)
    return split_full_name(found.group("name")) if found else {}


def _prefix(filename, name):
    stem = re.sub(r"\.ipynb$", "", filename, flags=re.I)
    lms = MOODLE_FLAT.match(stem) or BLACKBOARD.match(stem)
    if lms:
        return lms.group("prefix")
    stem = _COPY.sub("", stem)
    if name and stem.lower().endswith(name.lower()):
        return stem[: -len(name)].rstrip("_- ")
    parts = stem.split("_")
    return "_".join(parts[:3]) if len(parts) > 3 else ""


def _add_files(student, files, unknown, prefix=""):
    """Match ``files`` ((path, name shown in notes)) to the assignment's notebooks; files that are
    neither notebooks of it nor kit or system files go to ``unknown``. ``prefix``: the flat name's
    student part, which a name may carry without being noted as renamed."""
    loose = {}  # notebook: [(path, shown)] of names that only begin with its name
    shown_of = dict(files)
    for path, shown in files:
        if not path.is_file() or path.is_symlink():
            continue
        if system_file(shown) or kit_prefix(path.name) == "":   # in a folder: the kit's own name
            continue
        notebook = path.name.lower().endswith(".ipynb")
        name = match_notebook(path.name) if notebook else None
        exported = None if notebook else exported_notebook(path.name[len(prefix):].lstrip("_- "))
        if exported:                                               # «01_head.html»: saved as something else
            student.other_formats.setdefault(exported, shown)
        if name is None:
            like = loose_match(path.name[len(prefix):]) if notebook else None
            if like:
                loose.setdefault(like, []).append((path, shown))
            else:
                unknown.append(shown)
                if notebook:
                    student.unmatched.append((path, shown))
            continue
        if name in student.notebooks:
            other = student.notebooks[name]
            other_first, by_work = graded_first(other, path, name, prefix)
            if other_first:
                path, other, shown = other, path, shown_of.get(other, other.name)
            dropped = shown_of.get(other, other.name)   # a flat name: the file's own
            for either in (dropped, shown):   # the note below names both
                if f"{either!r} принят как {name}" in student.notes:
                    student.notes.remove(f"{either!r} принят как {name}")
            why = " (в нём решение, а тот — нетронутый выданный ноутбук)" if by_work else ""
            student.notes.append(f"повтор {name}: взят {shown!r}, не взят {dropped!r}{why}")
        elif path.name[len(prefix):].lstrip("_- ") != name + ".ipynb":
            student.notes.append(f"{shown!r} принят как {name}")
        student.notebooks[name] = path
    for name, found in sorted(loose.items()):   # "01_head_ivanov": only where nothing else is 01_head
        if name not in student.notebooks and len(found) == 1:
            (path, shown), = found
            student.notes.append(f"{shown!r} принят как {name}")
            student.notebooks[name] = path
        else:
            unknown.extend(shown for _, shown in found)
            student.unmatched.extend(found)
