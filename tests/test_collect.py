"""Fast tests of the LMS export reader (collect) and the roster: every layout, every trap."""
import json
import os
import pathlib
import signal
import shutil
import stat
import subprocess
import sys
import time
import zipfile

import nbformat
import pytest

from autograder import course
from autograder.classrun import collect, encodings, roster

import processes  # tests/processes.py

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def write(root, relative, data=NB):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_per_student_folders(tmp_path):
    write(tmp_path, "s1/01_head.ipynb")
    write(tmp_path, "s1/02_multihead_attention.ipynb")
    write(tmp_path, "s2/05_gpt_model.ipynb")
    students = collect.collect(tmp_path)
    assert list(students) == ["s1", "s2"]
    assert set(students["s1"].notebooks) == {"01_head", "02_multihead_attention"}
    assert students["s1"].name == {} and students["s1"].notes == []


def test_moodle_folders_give_ids_and_names(tmp_path):
    write(tmp_path, "Anna Petrova_123456_assignsubmission_file_/01_head.ipynb")
    write(tmp_path, "Jean Paul Sartre_777_assignsubmission_file_/01_Head (1).ipynb")
    students = collect.collect(tmp_path)
    assert list(students) == ["123456", "777"]
    assert students["123456"].name == {"first_name": "Anna", "last_name": "Petrova"}
    assert students["777"].name == {"first_name": "Jean Paul", "last_name": "Sartre"}
    assert "01_head" in students["777"].notebooks
    assert any("принят как 01_head" in note for note in students["777"].notes)


def test_flat_names(tmp_path):
    write(tmp_path, "petrova_anna_42_01_head.ipynb")
    write(tmp_path, "petrova_anna_42_04_block.ipynb")
    write(tmp_path, "ivanov_ivan_43_05_gpt_model.ipynb")
    write(tmp_path, "readme.txt", b"not a notebook")
    students = collect.collect(tmp_path)
    assert list(students) == ["42", "43"]
    assert set(students["42"].notebooks) == {"01_head", "04_block"}
    assert students["42"].name == {"first_name": "anna", "last_name": "petrova"}


def test_nbgraders_own_submitted_folder(tmp_path):
    """nbgrader's course layout, submitted/<student>/gpt/ with its timestamp.txt: the student is the
    outer folder even when alone (it was «gpt»), and nbgrader's file is no note."""
    for student in ("anna", "ivan"):
        write(tmp_path, f"two/submitted/{student}/gpt/01_head.ipynb")
        write(tmp_path, f"two/submitted/{student}/gpt/timestamp.txt", b"2026-12-01 10:00:00.000000 UTC")
    write(tmp_path, "one/submitted/anna/gpt/01_head.ipynb")
    write(tmp_path, "one/submitted/anna/gpt/timestamp.txt", b"2026-12-01 10:00:00.000000 UTC")
    for root, ids in ((tmp_path / "two" / "submitted", ["anna", "ivan"]), (tmp_path / "one" / "submitted", ["anna"]),
                      (tmp_path / "one" / "submitted" / "anna", ["anna"])):
        students = collect.collect(root)
        assert list(students) == ids, root
        assert all(set(s.notebooks) == {"01_head"} and s.notes == [] for s in students.values())


def test_moodle_flat_names(tmp_path):
    """Moodle's download without «Download submissions in folders»: <Full Name>_<id>_assignsubmission_
    file_<file> (the whole class was one student, «file»). A second copy of a notebook is named."""
    for name in ("Anna Petrova_1001_assignsubmission_file_01_head.ipynb",
                 "Anna Petrova_1001_assignsubmission_file_01_head (1).ipynb",
                 "Anna Petrova_1001_assignsubmission_file_02_multihead_attention.ipynb",
                 "Ivan Ivanov_1002_assignsubmission_file_01_head.ipynb"):
        write(tmp_path, name)
    write(tmp_path, "Anna Petrova_1001_assignsubmission_file_gpt_course.py", b"# the kit's")
    write(tmp_path, "Ivan Ivanov_1002_assignsubmission_onlinetext_onlinetext.html", b"<p>done</p>")
    students = collect.collect(tmp_path)
    assert list(students) == ["1001", "1002"]
    anna, ivan = students["1001"], students["1002"]
    assert anna.name == {"first_name": "Anna", "last_name": "Petrova"} and set(anna.notebooks) == {
        "01_head", "02_multihead_attention"}
    assert anna.notebooks["01_head"].name == "Anna Petrova_1001_assignsubmission_file_01_head.ipynb"
    assert anna.notes == ["повтор 01_head: взят 'Anna Petrova_1001_assignsubmission_file_01_head.ipynb', "
                          "не взят 'Anna Petrova_1001_assignsubmission_file_01_head (1).ipynb'"]
    assert ivan.name == {"first_name": "Ivan", "last_name": "Ivanov"} and set(ivan.notebooks) == {"01_head"}
    assert ivan.notes == ["не распознан файл 'Ivan Ivanov_1002_assignsubmission_onlinetext_onlinetext.html' "
                          "(не проверялся)"]


def test_canvas_and_classroom_flat_names(tmp_path):
    """Canvas: <lastnamefirstname>_[late_]<user id>_<file id>_<file>, a file id of its own for every
    file and «-1» after a name handed in again (Safari's copies too): one student per user id
    (each notebook was a student of its own). Google Classroom: «Full Name - file»."""
    for name in ("petrovaanna_123456_7890123_01_head.ipynb", "petrovaanna_123456_7890124_02_multihead_attention.ipynb",
                 "petrovaanna_late_123456_7890125_03_feedforward.ipynb", "ivanovivan_222333_7890200_01_head-1.ipynb",
                 "ivanovivan_222333_7890201_04_block.ipynb", "Boris Orlov - 05_gpt_model.ipynb"):
        write(tmp_path, name)
    write(tmp_path, "petrovaanna_late_123456_7890126_notes.txt", b"x")
    write(tmp_path, "ivanovivan_222333_7890202_gpt_course.py", b"# the kit's")
    students = collect.collect(tmp_path)
    assert len(students) == 3 and {"123456", "222333"} < set(students), list(students)
    anna, ivan = students["123456"], students["222333"]
    assert set(anna.notebooks) == {"01_head", "02_multihead_attention", "03_feedforward"}
    assert anna.name == {"first_name": "", "last_name": "petrovaanna"}
    assert anna.notes == ["не распознан файл 'petrovaanna_late_123456_7890126_notes.txt' (не проверялся)"]
    assert set(ivan.notebooks) == {"01_head", "04_block"}
    assert ivan.notes == ["'ivanovivan_222333_7890200_01_head-1.ipynb' принят как 01_head"]
    boris = next(s for sid, s in students.items() if sid.startswith("Boris"))
    assert set(boris.notebooks) == {"05_gpt_model"} and boris.name == {"first_name": "Boris", "last_name": "Orlov"}


def test_blackboard_flat_names(tmp_path):
    """Blackboard: <assignment>_<username>_attempt_<time>_<file> and a .txt record per attempt
    («Name: First Last (username)»): one student per username (a username with «_» whole), the
    name from the record, the last attempt's notebook taken and the earlier one named."""
    for name in ("GPT HW1_ivanov_attempt_2026-11-30-10-00-00_01_head.ipynb",
                 "GPT HW1_ivanov_attempt_2026-12-01-09-00-00_01_head.ipynb",
                 "GPT HW1_ivanov_attempt_2026-12-01-09-00-00_02_multihead_attention.ipynb",
                 "GPT HW1_petrova_a_attempt_2026-11-29-08-00-00_01_head.ipynb"):
        write(tmp_path, name)
    write(tmp_path, "GPT HW1_ivanov_attempt_2026-12-01-09-00-00.txt", "Name: Иван Иванов (ivanov)\nAssignment: GPT HW1\n"
          .encode("utf-8"))
    write(tmp_path, "GPT HW1_petrova_a_attempt_2026-11-29-08-00-00.txt", b"Name: Anna Petrova (petrova_a)\n")
    students = collect.collect(tmp_path)
    assert list(students) == ["ivanov", "petrova_a"]
    ivan, anna = students["ivanov"], students["petrova_a"]
    assert ivan.name == {"first_name": "Иван", "last_name": "Иванов"} and anna.name == {"first_name": "Anna",
                                                                                       "last_name": "Petrova"}
    assert set(ivan.notebooks) == {"01_head", "02_multihead_attention"} and "2026-12-01" in ivan.notebooks["01_head"].name
    assert ivan.notes == ["повтор 01_head: взят 'GPT HW1_ivanov_attempt_2026-12-01-09-00-00_01_head.ipynb', "
                          "не взят 'GPT HW1_ivanov_attempt_2026-11-30-10-00-00_01_head.ipynb'"]
    assert set(anna.notebooks) == {"01_head"} and anna.notes == []


def test_one_students_folder_given_alone_is_that_student(tmp_path):
    """The kit folder a student ran (notebooks under their own names, no LMS prefix) is one student
    named after the folder, not one student per notebook."""
    folder = tmp_path / "ivanov"
    for name in ("00_data", "01_head", "05_gpt_model"):
        write(folder, f"{name}.ipynb")
    write(folder, "gpt_course.py", b"# the kit's own file")
    write(folder, "draft.txt", b"mine")
    students = collect.collect(folder)
    assert list(students) == ["ivanov"]
    assert set(students["ivanov"].notebooks) == {"00_data", "01_head", "05_gpt_model"}
    assert students["ivanov"].notes == ["не распознан файл 'draft.txt' (не проверялся)"]


@pytest.mark.parametrize("backup", ["01_head_old.ipynb", "01_head_copy.ipynb", "01_head (1).ipynb",
                                    "01_Head.ipynb", "01_head_ivanov.ipynb"])
def test_the_notebook_under_its_own_name_is_graded_not_a_copy_beside_it(tmp_path, backup):
    """A student keeps an old or second copy beside the notebook: the file under the notebook's own
    name is graded, whichever comes later in name order, and the note names both."""
    own = write(tmp_path, "s1/01_head.ipynb")
    write(tmp_path, f"s1/{backup}")
    student = collect.collect(tmp_path)["s1"]
    assert student.notebooks == {"01_head": own}
    if backup == "01_head_ivanov.ipynb":   # a name only beginning like it, with the notebook there
        assert student.notes == [f"не распознан файл {backup!r} (не проверялся)"], student.notes
    else:
        assert student.notes == [f"повтор 01_head: взят '01_head.ipynb', не взят {backup!r}"], student.notes


@pytest.mark.parametrize("copy", ["01_head-Copy1.ipynb", "Copy of 01_head.ipynb", "01_head - Copy (2).ipynb",
                                  "01_head - копия.ipynb", "01_head (1).ipynb"])
def test_the_copy_with_the_work_is_graded_not_the_untouched_notebook_beside_it(tmp_path, copy):
    """Jupyter's «Make a Copy», Colab's «Save a copy», Windows Explorer's copies: a student who
    worked in the copy and handed in the untouched notebook too gets the copy graded (it was a file
    of nothing, or lost to the untouched one); with work in both, the notebook's own name wins."""
    release = (course.RELEASE / "01_head.ipynb").read_bytes()
    assert collect.untouched(course.RELEASE / "01_head.ipynb")
    solved = release.replace(b"raise NotImplementedError() # ", b"return x  # ")
    write(tmp_path, "s1/01_head.ipynb", release)
    worked = write(tmp_path, f"s1/{copy}", solved)
    student = collect.collect(tmp_path)["s1"]
    assert student.notebooks == {"01_head": worked}
    assert student.notes == [f"повтор 01_head: взят {copy!r}, не взят '01_head.ipynb' (в нём решение, а тот — "
                             "нетронутый выданный ноутбук)"], student.notes
    write(tmp_path, "s2/01_head.ipynb", solved)                   # work in both: the own name
    write(tmp_path, f"s2/{copy}", solved)
    assert collect.collect(tmp_path)["s2"].notebooks["01_head"].name == "01_head.ipynb"
    escaped = json.dumps(json.loads(release)).encode("ascii")      # a tool that escapes the Russian
    assert b"\\u0443" in escaped and collect.untouched(write(tmp_path, "escaped.ipynb", escaped))


def test_a_browser_copy_is_surer_than_a_name_only_like_it(tmp_path):
    copy = write(tmp_path, "s1/01_head (1).ipynb")
    write(tmp_path, "s1/01_head_old.ipynb")
    assert collect.collect(tmp_path)["s1"].notebooks["01_head"] == copy


@pytest.mark.parametrize("name", ["01_head_ivanov.ipynb", "01-head-final.ipynb", "01_head.ipynb.ipynb"])
def test_a_notebook_with_a_word_after_its_name_is_taken_when_nothing_else_is_that_notebook(tmp_path, name):
    found = write(tmp_path, f"s1/{name}")
    write(tmp_path, "s1/04_block.ipynb")
    student = collect.collect(tmp_path)["s1"]
    assert student.notebooks == {"01_head": found, "04_block": tmp_path / "s1" / "04_block.ipynb"}
    assert any(f"{name!r} принят как 01_head" in note for note in student.notes), student.notes
    write(tmp_path, "flat/petrova_anna_42_" + name)   # in an LMS's flat names too
    assert collect.collect(tmp_path / "flat")["42"].notebooks == {"01_head": tmp_path / "flat" / ("petrova_anna_42_" + name)}


def test_a_notebook_renamed_past_recognition_is_taken_by_its_content(tmp_path):
    """«ДЗ Иванов часть 2.ipynb» holding 02's cells (even in UTF-16) is 02 when 02 is missing, with a
    note; a notebook of the student's own, the lesson under another name, or a second copy of a
    notebook already there stay files of nothing."""
    release = course.RELEASE
    write(tmp_path, "s1/01_head.ipynb", (release / "01_head.ipynb").read_bytes())
    write(tmp_path, "s1/ДЗ Иванов часть 2.ipynb", (release / "02_multihead_attention.ipynb").read_bytes())
    write(tmp_path, "s1/hw.ipynb", (release / "04_block.ipynb").read_text(encoding="utf-8").encode("utf-16"))
    write(tmp_path, "s1/copy.ipynb", (release / "01_head.ipynb").read_bytes())
    write(tmp_path, "s1/lesson.ipynb", (course.ROOT / "notebooks" / "attention_basics.ipynb").read_bytes())
    write(tmp_path, "s1/scratch.ipynb", b'{"cells": [{"cell_type": "code", "source": "print(1)", "metadata": {}}]}')
    student = collect.collect(tmp_path)["s1"]
    assert student.notebooks == {"01_head": tmp_path / "s1" / "01_head.ipynb",
                                 "02_multihead_attention": tmp_path / "s1" / "ДЗ Иванов часть 2.ipynb",
                                 "04_block": tmp_path / "s1" / "hw.ipynb"}
    assert student.notes == ["'hw.ipynb' принят как 04_block (по содержимому)",
                             "'ДЗ Иванов часть 2.ipynb' принят как 02_multihead_attention (по содержимому)",
                             "не распознаны файлы (3, не проверялись): 'copy.ipynb', 'lesson.ipynb', 'scratch.ipynb'"]


def test_a_notebook_handed_in_as_html_or_py_is_named_as_such(tmp_path):
    """«Download as HTML/Python» instead of the notebook: the reason it is missing (staging's
    ``other_format`` note, worded in test_report.py), not a file of nothing; beside the notebook
    itself such a copy is just another file."""
    write(tmp_path, "s1/01_head.html", b"<html></html>")
    write(tmp_path, "s1/03_feedforward.py", b"class FeedFoward: pass\n")
    write(tmp_path, "s1/05_gpt_model - Copy.html", b"<html></html>")   # an editor's copy, exported
    write(tmp_path, "s1/04_block.ipynb")
    write(tmp_path, "s1/04_block.html", b"<html></html>")
    write(tmp_path, "s1/my_notes.txt", b"x")
    student = collect.collect(tmp_path)["s1"]
    assert set(student.notebooks) == {"04_block"}
    assert student.other_formats == {"01_head": "01_head.html", "03_feedforward": "03_feedforward.py",
                                     "05_gpt_model": "05_gpt_model - Copy.html"}
    assert student.notes == ["не распознаны файлы (2, не проверялись): '04_block.html', 'my_notes.txt'"]


def test_two_names_only_like_one_notebook_take_neither(tmp_path):
    write(tmp_path, "s1/01_head_ivanov.ipynb")
    write(tmp_path, "s1/01_head_draft.ipynb")
    write(tmp_path, "s1/04_block.ipynb")
    assert set(collect.collect(tmp_path)["s1"].notebooks) == {"04_block"}


def test_zip_with_one_top_folder_macosx_and_checkpoints(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/s1/01_head.ipynb", NB)
        zf.writestr("export/s1/.ipynb_checkpoints/01_head-checkpoint.ipynb", b"{}")
        zf.writestr("export/s2/03_feedforward.ipynb", NB)
        zf.writestr("__MACOSX/export/s1/._01_head.ipynb", b"\0\0")
    folder = collect.extract(archive, tmp_path / "x")
    students = collect.collect(folder)
    assert list(students) == ["s1", "s2"]
    assert students["s1"].notebooks["01_head"].read_bytes() == NB
    assert students["s1"].notes == []                     # the checkpoint copy is not a second notebook


def _zip_with_raw_names(archive, raw_names):
    """A zip whose entries' names are the bytes given, without the UTF-8 mark (Windows' own zips)."""
    placeholders = [bytes([ord("A") + i]) * len(raw) for i, raw in enumerate(raw_names)]
    with zipfile.ZipFile(archive, "w") as zf:
        for placeholder in placeholders:
            zf.writestr(placeholder.decode(), NB)
    data = archive.read_bytes()
    for placeholder, raw in zip(placeholders, raw_names):
        data = data.replace(placeholder, raw)
    archive.write_bytes(data)


def test_names_in_windows_code_pages_are_read_as_russian(tmp_path):
    """A Moodle export zipped again on a Russian Windows (cp866, no UTF-8 mark), or unzipped to
    folders whose names are cp1251 bytes: the names read as Russian, and nothing fails later
    (a name that was not UTF-8 once stopped the command at the gradebook)."""
    folder = "Иван Петров_1001_assignsubmission_file_/01_head.ipynb"
    archive = tmp_path / "export.zip"
    _zip_with_raw_names(archive, [folder.encode("cp866"), b"Anna Petrova_1002_assignsubmission_file_/01_head.ipynb"])
    assert not zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x800
    students = collect.collect(collect.extract(archive, tmp_path / "x"))
    assert students["1001"].name == {"first_name": "Иван", "last_name": "Петров"}
    assert students["1002"].name == {"first_name": "Anna", "last_name": "Petrova"}
    raw = tmp_path / "raw"
    write(raw, os.fsdecode("Пётр Сидоров_1003_assignsubmission_file_".encode("cp1251")) + "/01_head.ipynb")
    write(raw, "Ivan\x1b]0;title\x07\u202eRed_1004_assignsubmission_file_/01_head.ipynb")
    students = collect.collect(raw)
    assert students["1003"].name == {"first_name": "Пётр", "last_name": "Сидоров"}
    assert students["1004"].name == {"first_name": "", "last_name": "Ivan]0;titleRed"}  # no control characters
    assert encodings.name_text("Ёлкина Мария".encode("utf-8")) == "Ёлкина Мария"
    # a name that reads as Russian in no code page stays as Python reads a zip (cp437)
    assert encodings.name_text("Müller Hans".encode("cp850")) == "Müller Hans"
    assert encodings.name_text("Ёжиков Аркадий".encode("cp866")) == "Ёжиков Аркадий"


def test_zip_slip_absolute_paths_and_symlinks_are_skipped(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.ipynb", NB)
        zf.writestr("s1/../../escape2.ipynb", NB)
        zf.writestr("/abs/escape3.ipynb", NB)
        link = zipfile.ZipInfo("s1/02_multihead_attention.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("s1/01_head.ipynb", NB)
    dest = tmp_path / "deep" / "x"
    collect.extract(archive, dest)
    assert not (tmp_path / "escape.ipynb").exists()
    assert not (tmp_path / "deep" / "escape2.ipynb").exists()
    assert not list(tmp_path.rglob("escape2.ipynb")) or all(dest in p.parents for p in tmp_path.rglob("escape2.ipynb"))
    assert all(dest in p.parents for p in tmp_path.rglob("escape3.ipynb"))
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    students = collect.collect(dest)
    assert set(students["s1"].notebooks) == {"01_head"}


def _student_zip(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if data is None:                                   # a link
                link = zipfile.ZipInfo(name)
                link.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(link, "/etc/passwd")
            else:
                zf.writestr(name, data)
    return path


def test_a_zip_a_student_handed_in_is_opened(tmp_path):
    """Students zip their folder and upload the zip (Moodle keeps it as it came): its notebooks are
    graded, macOS's __MACOSX and .DS_Store and the kit's files stay silent, a file of nothing is
    named inside its archive; an unsafe member is skipped; an archive that cannot be opened (damaged,
    with a password, not a zip) is a problem of the submission (in the report's «Требует внимания»,
    beside the notebooks it leaves missing; test_report.py words it). Without a folder to unpack in, a zip is a
    file of nothing (the check before grading)."""
    export = tmp_path / "export"
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X" + bytes(40)
    _student_zip(export / "Anna Petrova_1001_assignsubmission_file_" / "gpt.zip", {
        "gpt/01_head.ipynb": NB, "gpt/04_block.ipynb": NB, "gpt/gpt_course.py": b"# kit",
        "__MACOSX/gpt/._01_head.ipynb": appledouble, "gpt/.DS_Store": appledouble, "gpt/notes.txt": b"my notes",
        "../02_multihead_attention.ipynb": NB, "gpt/03_feedforward.ipynb": None})
    locked = _student_zip(export / "Ivan Ivanov_1002_assignsubmission_file_" / "work.zip", {"01_head.ipynb": NB})
    data = bytearray(locked.read_bytes())
    for header, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(header) + flags_at] |= 0x1
    locked.write_bytes(bytes(data))
    write(export, "Boris Orlov_1003_assignsubmission_file_/gpt.rar", b"Rar!\x1a\x07\x00")
    write(export, "Boris Orlov_1003_assignsubmission_file_/05_gpt_model.ipynb")
    write(export, "Oleg Popov_1004_assignsubmission_file_/gpt.zip", b"PK\x03\x04 cut short")
    students = collect.collect(export, unpack=tmp_path / "unpacked")
    anna = students["1001"]
    assert set(anna.notebooks) == {"01_head", "04_block"}
    assert all((tmp_path / "unpacked") in path.parents and path.read_bytes() == NB for path in anna.notebooks.values())
    assert anna.notes == ["не распознан файл 'gpt.zip/gpt/notes.txt' (не проверялся)"]
    assert not list(tmp_path.rglob("02_multihead_attention.ipynb"))
    assert not any(path.is_symlink() for path in (tmp_path / "unpacked").rglob("*"))
    assert anna.unopened == []
    assert students["1002"].notebooks == {} and students["1002"].unopened == [
        ("work.zip", "cannot be read", "файл '01_head.ipynb' в архиве зашифрован паролем: сохраните архив без пароля")]
    assert set(students["1003"].notebooks) == {"05_gpt_model"}
    assert students["1003"].unopened == [("gpt.rar", "not a zip", "открываются только zip-архивы; "
                                          "попросите сдать .zip или сами ноутбуки .ipynb")]
    (archive, reason, words), = students["1004"].unopened
    assert (archive, reason) == ("gpt.zip", "cannot be read") and words.startswith("архив повреждён"), words
    assert all(s.notes == [] for sid, s in students.items() if sid != "1001")
    unopened = collect.collect(export)
    assert unopened["1001"].notebooks == {} and unopened["1001"].notes == ["не распознан файл 'gpt.zip' (не проверялся)"]


def test_a_zip_in_flat_lms_names_is_its_students(tmp_path):
    _student_zip(tmp_path / "petrova_anna_42_gpt.zip", {"gpt/01_head.ipynb": NB})
    _student_zip(tmp_path / "Boris Orlov_44_assignsubmission_file_gpt.zip", {"01_head.ipynb": NB})
    write(tmp_path, "ivanov_ivan_43_01_head.ipynb")
    students = collect.collect(tmp_path, unpack=tmp_path.parent / "unpacked")
    assert list(students) == ["42", "43", "44"]
    assert set(students["42"].notebooks) == {"01_head"} and students["42"].notes == []
    assert students["42"].name == {"first_name": "anna", "last_name": "petrova"}
    assert set(students["44"].notebooks) == {"01_head"} and students["44"].notes == []
    assert students["44"].name == {"first_name": "Boris", "last_name": "Orlov"}


def test_symlink_in_a_folder_is_not_followed(tmp_path):
    secret = write(tmp_path, "secret.ipynb")
    write(tmp_path, "export/s1/01_head.ipynb")
    os.symlink(secret, tmp_path / "export" / "s1" / "02_multihead_attention.ipynb")
    students = collect.collect(tmp_path / "export")
    assert set(students["s1"].notebooks) == {"01_head"}


def test_size_cap(tmp_path, monkeypatch):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("s1/01_head.ipynb", b" " * 5000)
        zf.writestr("s2/01_head.ipynb", b" " * 5000)
    monkeypatch.setattr(collect, "MAX_ZIP_BYTES", 8000)
    with pytest.raises(ValueError):
        collect.extract(archive, tmp_path / "x")
    monkeypatch.setattr(collect, "MAX_ZIP_BYTES", 20000)
    collect.extract(archive, tmp_path / "y")
    assert len(list((tmp_path / "y").rglob("*.ipynb"))) == 2


def test_hostile_ids_are_made_safe(tmp_path):
    write(tmp_path, "<script>x</script>/01_head.ipynb")
    (sid,) = collect.collect(tmp_path)
    assert all(c.isalnum() or c in "_-" for c in sid)


# What running the kit and the systems students use leave beside the notebooks.
DROPPINGS = (".ipynb_checkpoints/01_head-checkpoint.ipynb", "__pycache__/gpt_course.cpython-311.pyc",
             ".DS_Store", "01_head.ipynb:Zone.Identifier", ".virtual_documents/01_head.ipynb", "Thumbs.db")


def write_kit(folder):
    """The whole kit folder as a student who ran it hands it in: every file of the release
    (its notebooks are the student's), copies a browser renamed, and the droppings."""
    for rel in course.kit_files():
        write(folder, rel.as_posix(), (course.RELEASE / rel).read_bytes())
    write(folder, "README (1).md", b"# the README downloaded twice")
    for rel in DROPPINGS:
        write(folder, rel, NB if rel.endswith(".ipynb") else b"\0")


def test_kit_files_are_known_from_the_release():
    names = {rel.as_posix() for rel in course.kit_files()}
    assert {"attention_basics.ipynb", "README.md", "block.png", "data/input.txt", "gpt_course.py"} <= names
    assert collect.kit_prefix("attention_basics.ipynb") == "" and collect.kit_prefix("01_head.ipynb") is None
    assert collect.kit_prefix("Petrova_Anna_42_data_input.txt") == "Petrova_Anna_42"
    assert collect.kit_prefix("gpt_course (2).py") == "" and collect.kit_prefix("my_notes.txt") is None


@pytest.mark.parametrize("layout", ["student folder", "kit folder inside", "moodle", "zip"])
def test_the_whole_kit_is_not_noise(tmp_path, layout):
    """A student who hands in the kit folder: the seven notebooks are theirs, nothing is noted;
    beside them a student whose extra files belong to nothing gets one note naming them."""
    export = tmp_path / "export"
    folder = {"student folder": "s1", "kit folder inside": "s1/gpt", "moodle":
              "Anna Petrova_s1_assignsubmission_file_", "zip": "class/s1/gpt"}[layout]
    write_kit(export / folder)
    other = "s2" if layout != "moodle" else "Ivan Ivanov_s2_assignsubmission_file_"
    other = f"class/{other}" if layout == "zip" else other
    write(export, f"{other}/01_head.ipynb")
    write(export, f"{other}/my_gpt.ipynb")
    write(export, f"{other}/work/solution.py", b"print(1)")
    write(export, f"{other}/__pycache__/solution.cpython-311.pyc", b"\0")
    if layout == "zip":
        archive = tmp_path / "export.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(export.rglob("*")):
                zf.write(path, path.relative_to(export).as_posix())
        export = collect.extract(archive, tmp_path / "x")
    students = collect.collect(export)
    assert list(students) == ["s1", "s2"]
    assert set(students["s1"].notebooks) == set(course.NOTEBOOKS)
    assert students["s1"].notebooks["01_head"].read_bytes() == (course.RELEASE / "01_head.ipynb").read_bytes()
    assert students["s1"].notes == []
    assert students["s2"].notes == ["не распознаны файлы (2, не проверялись): 'my_gpt.ipynb', "
                                    f"{str(pathlib.Path('work', 'solution.py'))!r}"]


def test_the_kit_in_flat_lms_names(tmp_path):
    """Flat names: the kit's files join their student silently (a lone lesson makes no student);
    a file of a student that belongs to nothing is noted; one of nobody's is left alone."""
    for rel in course.kit_files():
        flat = "_".join(rel.parts)
        write(tmp_path, f"petrova_anna_42_{flat}", (course.RELEASE / rel).read_bytes())
    write(tmp_path, "petrova_anna_42_README (1).md", b"again")
    write(tmp_path, "attention_basics.ipynb", (course.RELEASE / "attention_basics.ipynb").read_bytes())
    write(tmp_path, "ivanov_ivan_43_attention_basics.ipynb", NB)   # the lesson alone: a student
    write(tmp_path, "sidorov_petr_44_05_gpt_model.ipynb")
    write(tmp_path, "sidorov_petr_44_solution.py", b"print(1)")
    write(tmp_path, "sidorov_petr_44_my_gpt.ipynb")
    write(tmp_path, "export_list_of_files.csv", b"nobody's")
    write(tmp_path, ".DS_Store", b"\0")
    students = collect.collect(tmp_path)
    assert list(students) == ["42", "43", "44"]
    assert set(students["42"].notebooks) == set(course.NOTEBOOKS) and students["42"].notes == []
    assert students["42"].name == {"first_name": "anna", "last_name": "petrova"}
    assert students["43"].notebooks == {} and students["43"].notes == []
    assert students["44"].notes == ["не распознаны файлы (2, не проверялись): "
                                    "'sidorov_petr_44_my_gpt.ipynb', 'sidorov_petr_44_solution.py'"]


def test_a_file_of_a_release_that_grows_is_known(tmp_path, monkeypatch):
    """The kit is what the release folder holds: a new companion folder is known without a list."""
    release = tmp_path / "release"
    for rel in ("01_head.ipynb", "README.md", "notebooks/attention_extra.ipynb", "img/heads.svg"):
        write(release, rel)
    write(release, ".ipynb_checkpoints/README-checkpoint.md")
    monkeypatch.setattr(collect, "kit_files", lambda: course.kit_files(release))
    monkeypatch.setattr(collect, "KIT_NAMES", collect._kit_names())
    export = tmp_path / "export"
    for rel in ("s1/01_head.ipynb", "s1/notebooks/attention_extra.ipynb", "s1/img/heads.svg",
                "s1/README-checkpoint.md", "s1/attention_basics.ipynb"):
        write(export, rel)
    (student,) = collect.collect(export).values()
    assert set(student.notebooks) == {"01_head"}
    assert student.notes == ["не распознаны файлы (2, не проверялись): "
                             "'attention_basics.ipynb', 'README-checkpoint.md'"]


def test_many_unknown_files_are_counted(tmp_path):
    write(tmp_path, "s1/01_head.ipynb")
    for i in range(12):
        write(tmp_path, f"s1/venv/lib/m{i:02}.py", b"")
    (student,) = collect.collect(tmp_path).values()
    (note,) = student.notes
    assert note.startswith("не распознаны файлы (12, не проверялись): ") and note.endswith("и ещё 7")
    assert note.count("'") == 10


ROSTER_EN = ("id,first_name,last_name,email\n"
             "s1,Анна,Петрова,anna@example.org\n"
             "123456,Anna-Maria,Petrova Lopez,am@example.org\n")
MOODLE_PARTICIPANTS = ('\ufeff"First name","Last name","ID number","Email address"\n'
                       '"Иван","Иванов","s2","ivan@example.org"\n')
WORKSHEET_RU = ('\ufeffИдентификатор,"Полное имя","Адрес электронной почты",Оценка\n'
                'Участник 777,"Пётр Сидоров",petr@example.org,\n')


def test_roster_fills_and_corrects_names(tmp_path):
    write(tmp_path, "s1/01_head.ipynb")
    write(tmp_path, "Anna Maria Petrova Lopez_123456_assignsubmission_file_/01_head.ipynb")
    path = tmp_path.parent / (tmp_path.name + "-roster.csv")
    path.write_text(ROSTER_EN, encoding="utf-8")
    students = collect.collect(tmp_path, roster.read(path))
    assert students["s1"].name == {"first_name": "Анна", "last_name": "Петрова", "email": "anna@example.org"}
    assert students["123456"].name["last_name"] == "Petrova Lopez"
    assert students["123456"].name["first_name"] == "Anna-Maria"


def test_roster_accepts_moodle_exports():
    assert roster.parse(MOODLE_PARTICIPANTS) == {
        "s2": {"first_name": "Иван", "last_name": "Иванов", "email": "ivan@example.org"}}
    assert roster.parse(WORKSHEET_RU) == {
        "777": {"first_name": "Пётр", "last_name": "Сидоров", "email": "petr@example.org"}}
    with pytest.raises(ValueError):
        roster.parse("name,email\nx,y\n")


def test_grade_command_names_an_unusable_input_before_any_work(tmp_path, capsys):
    """A missing folder, a file that is no zip, a roster or worksheet missing or unreadable (an
    Excel table, no id column; they were read after grading), an OUT that is a file, is under a
    file or inside the submissions: exit 2, one Russian line naming the input, and no
    OUT folder made."""
    from autograder.__main__ import main
    notebook = tmp_path / "01_head.ipynb"
    notebook.write_text("{}", encoding="utf-8")
    (tmp_path / "class").mkdir()
    write(tmp_path, "class/s1/01_head.ipynb")
    out = tmp_path / "out"
    excel = tmp_path / "roster.xlsx"                  # a zip of XML, as Excel saves a table
    with zipfile.ZipFile(excel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook>" + "Иванов " * 200 + "</workbook>")
    no_id = tmp_path / "names.csv"
    no_id.write_text("name,mail\nAnna,a@example.org\n", encoding="utf-8")
    participants = tmp_path / "participants.csv"       # a roster, not a grading worksheet
    participants.write_text("Identifier,Full name\nParticipant 1,Anna Petrova\n", encoding="utf-8")
    for args, words in [([str(tmp_path / "missing")], "нет такой папки или архива с работами"),
                        ([str(notebook)], "не папка и не zip-архив"),
                        ([str(tmp_path / "class"), "--roster", "nope.csv"], "--roster: нет такого файла: nope.csv"),
                        ([str(tmp_path / "class"), "--moodle-worksheet", "no.csv"],
                         "--moodle-worksheet: нет такого файла: no.csv"),
                        ([str(tmp_path / "class"), "--roster", str(excel)],
                         f"--roster {excel}: это не текст CSV, а двоичный файл (таблица Excel .xlsx?)"),
                        ([str(tmp_path / "class"), "--roster", str(no_id)], "в списке студентов нет столбца id"),
                        ([str(tmp_path / "class"), "--moodle-worksheet", str(excel)], "это не текст CSV"),
                        ([str(tmp_path / "class"), "--moodle-worksheet", str(participants)],
                         f"--moodle-worksheet {participants}: это не лист оценок Moodle")]:
        assert main(["grade", *args, "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
        assert not out.exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "downloads").mkdir()
    _zip_with_raw_names(tmp_path / "downloads" / "export.zip", [b"s1/01_head.ipynb"])
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("s1/01_head.ipynb", NB * 50)
    data = bytearray(damaged.read_bytes())
    data[60:80] = bytes(20)                      # inside the compressed notebook
    damaged.write_bytes(bytes(data))
    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as zf:
        zf.writestr("s1/01_head.ipynb", NB)
    data = bytearray(locked.read_bytes())       # marked encrypted, as a zip with a password is:
    for header, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):   # the flag in both headers
        data[data.index(header) + flags_at] |= 0x1
    locked.write_bytes(bytes(data))
    no_notebooks = tmp_path / "texts.zip"
    with zipfile.ZipFile(no_notebooks, "w") as zf:
        zf.writestr("s1/answer.txt", "42")
    for where, words in [(tmp_path / "empty", "нет работ: ни папок студентов, ни ноутбуков"),
                         (tmp_path / "downloads", "в ней есть архив export.zip: укажите команде его"),
                         (damaged, "в архиве повреждён"), (locked, "зашифрован паролем"),
                         (no_notebooks, "в архиве нет ни одного ноутбука")]:
        assert main(["grade", str(where), "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
        assert not out.exists()
    inside = tmp_path / "class" / "results"
    for where, words in [(notebook, "— файл, а не папка"),
                         (notebook / "out", "— файл, папку в нём не создать"),
                         (inside, "внутри папки с работами")]:
        assert main(["grade", str(tmp_path / "class"), "--out", str(where)]) == 2
        assert words in capsys.readouterr().err
    assert not inside.exists() and notebook.read_text(encoding="utf-8") == "{}"
    assert main(["demo", "--out", str(notebook / "out")]) == 2      # the example class goes beside OUT
    assert "— файл, папку в нём не создать" in capsys.readouterr().err
    for option, value in (("--jobs", "0"), ("--jobs", "-2"), ("--cell-timeout", "0"), ("--dask-wait", "-1"),
                          ("--jobs", "два")):
        with pytest.raises(SystemExit) as stopped:
            main(["grade", str(tmp_path / "class"), "--out", str(out), option, value])
        assert stopped.value.code == 2
        assert f"argument {option}: нужно число" in capsys.readouterr().err
    assert not out.exists()


def _reached(pid, moment):
    """Has the command ``pid`` reached ``moment``: loading torch ("imports"), checking the
    sandbox with a bwrap of its own ("sandbox_check"), or grading in a worker's sandbox
    ("grading")?"""
    if moment == "imports":
        with open(f"/proc/{pid}/maps") as f:
            return "libtorch" in f.read()
    now = processes.table()
    name = {p: os.path.basename(argv[0]) if argv else "" for p, (_, argv) in now.items()}
    parent_of = {p: parent for p, (parent, _) in now.items()}
    children = {child for child, parent in parent_of.items() if parent == pid}
    if moment == "sandbox_check":   # the test's slow bwrap: a shell script while it waits
        return any(any(os.path.basename(arg) == "bwrap" for arg in now[child][1][:2]) for child in children)
    workers = {child for child in children if name.get(child) != "bwrap"}  # bwrap forks itself
    return any(parent_of[p] in workers and name[p] == "bwrap" for p in now)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["imports", "sandbox_check", "grading"])
def test_ctrl_c_ends_the_command_with_one_russian_line(tmp_path, moment):
    """Ctrl+C (SIGINT to the command's process group, as a terminal sends it) while the command
    loads its modules, checks the sandbox or grades (one worker; the first student's kernel waits
    in a loop, two more are queued): exit code 130 and the Russian «прервано» line, no traceback
    (of the command, its workers or the kernel zygote), nothing left running, and no student
    graded after it (the pool queues one ahead of its worker); before grading, no OUT folder."""
    if moment != "imports" and not shutil.which("bwrap"):
        pytest.skip("no bubblewrap: the command checks and uses no sandbox")
    nb = nbformat.read(str(course.RELEASE / "01_head.ipynb"), as_version=4)
    for sid in ("student_b", "student_c"):
        (tmp_path / "class" / sid).mkdir(parents=True)
        nbformat.write(nb, str(tmp_path / "class" / sid / "01_head.ipynb"))
    (tmp_path / "class" / "student_a").mkdir()
    nb.cells.insert(0, nbformat.v4.new_code_cell("import time\nwhile True:\n    time.sleep(0.05)"))
    nbformat.write(nb, str(tmp_path / "class" / "student_a" / "01_head.ipynb"))
    out = tmp_path / "out"
    env = dict(os.environ)
    if moment == "sandbox_check":   # a check of a few milliseconds, made to last: a Ctrl+C can't miss it
        slow = tmp_path / "bin" / "bwrap"
        slow.parent.mkdir()
        slow.write_text(f"#!/bin/sh\nsleep 2\nexec {shutil.which('bwrap')} \"$@\"\n")
        slow.chmod(0o755)
        env["PATH"] = f"{slow.parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(tmp_path / "class"), "--out", str(out),
                             "--jobs", "1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not _reached(proc.pid, moment):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"the command did not reach {moment}"
            time.sleep(0.005)
        started = processes.descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        sandboxes_after = set()   # kernels' sandboxes started after the interrupt
        while proc.poll() is None and time.monotonic() < deadline:
            now = processes.table()
            sandboxes_after |= {p for p in processes.descendants(proc.pid) - started
                                if p in now and now[p][1] and os.path.basename(now[p][1][0]) == "bwrap"}
            time.sleep(0.01)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    if moment == "grading":
        assert err.strip().splitlines()[-1] == ("прервано: проверенные студенты сохранены; "
                                                "та же команда проверит только остальных"), err
        assert not (out / "state.json").exists()
        assert not sandboxes_after   # the students queued behind the interrupted one never start
    else:
        assert err.strip() == "прервано (Ctrl+C)", err
        assert not out.exists()
    for english in ("Traceback", "Exception", "Error"):
        assert english not in err, err
    deadline = time.monotonic() + 10   # whatever it started is gone: workers, zygote, kernels
    while set(processes.table()) & started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(processes.table()) & started
