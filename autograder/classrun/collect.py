"""Turn an LMS export (folder or zip) into {student_id: {notebook: path}}.

Accepted layouts: one folder per student (``<student_id>/<notebook>.ipynb``),
Moodle's ``<Full Name>_<id>_assignsubmission_file_/<notebook>.ipynb``, and flat
files ``<lastname>_<firstname>_<id>_<notebook>.ipynb``. Slightly renamed
notebooks (``01_head (1).ipynb``, ``01_Head.ipynb``) are matched and noted.
Names in Moodle folders («First Last») and flat names become ``Student.name``;
a roster (``roster.py``) fills or corrects them.
"""
import dataclasses
import difflib
import hashlib
import pathlib
import re
import shutil
import zipfile

from ..course import NOTEBOOKS

MOODLE = re.compile(r"^(?P<name>.*)_(?P<id>[^_]+)_assignsubmission_\w*$")
_KEYS = {re.sub(r"[^a-z0-9]", "", name.lower()): name for name in NOTEBOOKS}
MAX_ZIP_BYTES = 2 * 2**30


@dataclasses.dataclass
class Student:
    student_id: str
    notebooks: dict = dataclasses.field(default_factory=dict)  # name -> path
    notes: list = dataclasses.field(default_factory=list)
    name: dict = dataclasses.field(default_factory=dict)  # first_name, last_name, email


def split_full_name(full):
    """{"first_name", "last_name"} of «First Last»: the last word is the last name."""
    words = full.replace("_", " ").split()
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


def match_notebook(filename):
    """Canonical notebook name for a file name, or None."""
    stem = re.sub(r"\.ipynb$", "", filename, flags=re.I)
    stem = re.sub(r"\s*\(\d+\)$", "", stem).strip()          # "01_head (1)"
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    if key in _KEYS:
        return _KEYS[key]
    for known, name in _KEYS.items():                          # "..._id_01_head"
        if key.endswith(known):
            return name
    close = difflib.get_close_matches(key, list(_KEYS), n=1, cutoff=0.75)
    return _KEYS[close[0]] if close else None


def extract(archive, dest):
    """Extract a zip safely: no absolute paths, no '..', no links, size capped."""
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = [p for p in pathlib.PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "/")]
            if not parts or ".." in parts or info.is_dir() or (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError("архив больше 2 ГиБ после распаковки")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def collect(root, roster=None):
    """Students found under folder ``root``, sorted by id; names from ``roster`` ({id: name}) win."""
    root = pathlib.Path(root)
    students = {}
    flat = [p for p in root.iterdir() if p.is_file()]
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if len(folders) == 1 and not flat and not _student_folder(folders[0]):
        return collect(folders[0], roster)                    # zip with one top folder
    for folder in sorted(folders):
        moodle = MOODLE.match(folder.name)
        sid = safe_id(moodle.group("id") if moodle else folder.name)
        student = students.setdefault(sid, Student(sid))
        if moodle and not student.name:
            student.name = split_full_name(moodle.group("name"))
        _add_files(student, sorted(folder.rglob("*")), folder)
    for path in sorted(flat):
        name = match_notebook(path.name)
        if not path.name.lower().endswith(".ipynb"):
            continue
        prefix = _prefix(path.name, name)
        parts = prefix.split("_") if prefix else []
        sid = safe_id(parts[-1] if parts else path.stem)
        student = students.setdefault(sid, Student(sid))
        if len(parts) >= 3 and not student.name:               # lastname_firstname_id
            student.name = {"first_name": " ".join(parts[1:-1]), "last_name": parts[0]}
        _add_files(student, [path], root)
    for sid, student in students.items():
        if roster and sid in roster:
            student.name = {**student.name, **{k: v for k, v in roster[sid].items() if v}}
    return dict(sorted(students.items()))


def _student_folder(folder):
    return any(p.suffix.lower() == ".ipynb" for p in folder.iterdir())


def _prefix(filename, name):
    stem = re.sub(r"\.ipynb$", "", filename, flags=re.I)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)
    if name and stem.lower().endswith(name.lower()):
        return stem[: -len(name)].rstrip("_- ")
    parts = stem.split("_")
    return "_".join(parts[:3]) if len(parts) > 3 else ""


def _add_files(student, paths, base):
    for path in paths:
        if not path.is_file() or path.is_symlink() or not path.name.lower().endswith(".ipynb"):
            continue
        if ".ipynb_checkpoints" in path.parts:
            continue
        name = match_notebook(path.name)
        shown = str(path.relative_to(base))
        if name is None:
            student.notes.append(f"не распознан файл {shown!r}")
            continue
        if name in student.notebooks:
            student.notes.append(f"повтор {name}: взят {shown!r}")
        elif not path.name.startswith(name + ".ipynb") and pathlib.Path(shown).name != name + ".ipynb":
            student.notes.append(f"{shown!r} принят как {name}")
        student.notebooks[name] = path
