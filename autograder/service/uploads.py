"""Uploads are untrusted: files (the seven notebooks, the kit zip, or both) in, the
assignment's notebooks as bytes out, or one Russian sentence saying why not.

Refused: more than the size cap, an archive with a path out of it (``..``, absolute, drive
letters), a link, an encrypted entry, too many entries, a packing ratio of a zip bomb, two
files for one notebook, a notebook that is not a notebook, an upload with no notebook of the
assignment. The kit's own files and what systems leave are ignored; other files are named
in a warning. File names are only ever displayed (escaped), never used as paths.
"""
import dataclasses
import io
import pathlib
import re
import stat
import zipfile

from ..classrun import collect, repair
from ..course import NOTEBOOKS

MAX_ENTRIES = 500
MAX_UNPACKED = 200 * 2**20     # all entries of an archive together
MAX_RATIO = 100                # unpacked / packed, per entry, above 1 MiB
MAX_NOTEBOOK = 40 * 2**20
SHOWN = 60


class Refused(ValueError):
    """An upload that is not taken; ``str()`` is the Russian sentence for the student."""


@dataclasses.dataclass
class Parsed:
    notebooks: dict            # notebook name -> bytes
    warnings: list             # Russian, for the student


def shown(name):
    """A file name as it may be displayed: printable, at most ``SHOWN`` characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name))
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def _entry_parts(name):
    """The parts of an archive entry's path; Refused for one that leaves the archive."""
    if "\0" in name:
        raise Refused(f"в архиве файл с недопустимым именем «{shown(name)}»: архив не принят")
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise Refused(f"в архиве абсолютный путь «{shown(name)}»: такие архивы не принимаются")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(f"в архиве путь за его пределы «{shown(name)}»: такие архивы не принимаются")
    return parts


def _read_zip(data, budget):
    """[(relative path, bytes)] of a zip's regular files, read with every cap."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise Refused("архив повреждён или это не zip: соберите его заново (или загрузите ноутбуки)") from None
    if len(entries) > MAX_ENTRIES:
        raise Refused(f"в архиве больше {MAX_ENTRIES} файлов: загрузите только ноутбуки задания")
    found = []
    unpacked = 0
    for info in entries:
        parts = _entry_parts(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise Refused(f"в архиве ссылка «{shown(info.filename)}»: ссылки не принимаются, "
                          "положите в архив сами файлы")
        if info.is_dir() or not parts:
            continue
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):   # a type given, and not a file
            raise Refused(f"в архиве не обычный файл «{shown(info.filename)}»: архив не принят")
        if info.flag_bits & 0x1:
            raise Refused("архив зашифрован паролем: загрузите архив без пароля")
        relative = "/".join(parts)
        if collect.system_file(relative) or not _wanted(parts[-1]):
            found.append((relative, None))       # not read: kit files, data, systems' droppings
            continue
        if info.file_size > MAX_NOTEBOOK:
            raise Refused(f"файл «{shown(relative)}» больше {MAX_NOTEBOOK // 2**20} МБ: "
                          "очистите выводы ячеек (Kernel → Restart & Clear Output) и сохраните")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise Refused(f"файл «{shown(relative)}» в архиве сжат подозрительно сильно: архив не принят")
        unpacked += info.file_size
        if unpacked > min(MAX_UNPACKED, budget):
            raise Refused("в распакованном виде архив слишком велик: загрузите только ноутбуки")
        try:
            with archive.open(info) as src:
                content = src.read(info.file_size + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError, OSError):
            raise Refused(f"файл «{shown(relative)}» в архиве не читается: соберите архив заново") from None
        if len(content) != info.file_size:
            raise Refused(f"файл «{shown(relative)}» в архиве не совпадает со своим размером: архив повреждён")
        found.append((relative, content))
    return found


def _wanted(name):
    """Read from an archive: notebooks only (the rest of the kit is never graded)."""
    return name.lower().endswith(".ipynb")


def parse(uploaded, max_bytes):
    """``uploaded``: [(file name as sent, bytes)] → Parsed; Refused with the reason."""
    if not uploaded:
        raise Refused("не выбрано ни одного файла")
    if sum(len(data) for _, data in uploaded) > max_bytes:
        raise Refused(f"загрузка больше {max_bytes // 2**20} МБ: загрузите только ноутбуки или архив задания")
    candidates, unknown = [], []
    for sent_name, data in uploaded:
        name = pathlib.PurePosixPath(str(sent_name).replace("\\", "/")).name or "файл"
        if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
            for relative, content in _read_zip(data, max_bytes * 5):
                if content is None:
                    if not collect.system_file(relative) and collect.kit_prefix(pathlib.PurePosixPath(relative).name) is None:
                        unknown.append(relative)
                    continue
                candidates.append((relative, content))
        elif name.lower().endswith(".ipynb"):
            candidates.append((name, data))
        elif collect.system_file(name) or collect.kit_prefix(name) is not None:
            continue
        else:
            unknown.append(name)
    notebooks, sources = {}, {}
    for relative, content in candidates:
        base = pathlib.PurePosixPath(relative).name
        if collect.kit_prefix(base) == "":      # the lesson of the kit
            continue
        notebook = collect.match_notebook(base)
        if notebook is None:
            unknown.append(relative)
            continue
        if notebook in notebooks:
            raise Refused(f"два файла для {notebook}: «{shown(sources[notebook])}» и «{shown(relative)}» — "
                          "оставьте один")
        try:
            _, repairs = repair.read(content)
        except repair.InvalidNotebook as exc:
            reason = REASONS.get(exc.reason.split(" (")[0], exc.words)
            raise Refused(f"«{shown(relative)}» — не ноутбук Jupyter ({reason}): "
                          "откройте его в Jupyter, сохраните и загрузите снова") from None
        if any(kind == "cut_short" for kind, _ in repairs):   # the batch grader takes its whole cells
            raise Refused(f"«{shown(relative)}» обрезан или повреждён (Jupyter его не откроет): загрузите его "
                          "снова; если он так же обрезан и на вашем компьютере, возьмите последнюю целую копию "
                          "(например, из папки .ipynb_checkpoints рядом с ним)")
        notebooks[notebook], sources[notebook] = content, relative
    exported = [(u, collect.exported_notebook(pathlib.PurePosixPath(u).name)) for u in unknown]
    exported = [(u, name) for u, name in exported if name and name not in notebooks]
    unknown = [u for u in unknown if u not in dict(exported)]
    as_other = "; ".join(f"«{shown(u)}» — не ноутбук, а его копия в другом формате: загрузите сам {name}.ipynb "
                         "(в Jupyter: File → Save, файл .ipynb)" for u, name in exported)
    if not notebooks:
        expected = ", ".join(f"{n}.ipynb" for n in NOTEBOOKS)
        raise Refused(as_other or f"в загрузке нет ни одного ноутбука задания (ожидаются {expected}"
                      " или архив с ними)")
    warnings = [as_other] if as_other else []
    missing = [n for n in NOTEBOOKS if n not in notebooks]
    if missing:
        warnings.append("нет ноутбуков: " + ", ".join(missing)
                        + " — вместо них проверяются нетронутые ноутбуки задания (0 баллов за их задачи)")
    if unknown:
        listed = ", ".join(f"«{shown(u)}»" for u in unknown[:5])
        more = f" и ещё {len(unknown) - 5}" if len(unknown) > 5 else ""
        warnings.append(f"не относятся к заданию и не проверялись: {listed}{more}")
    return Parsed(notebooks, warnings)


REASONS = {"not text": "не текст, а двоичные данные", "not JSON": "не JSON", "not a notebook": "не формат ноутбука",
           "over 100 MB": "больше 100 МБ"}
