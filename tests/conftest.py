"""Graded classes that tests in more than one file read.

A session fixture is made once per test process; the files that read one carry the
same ``xdist_group`` (the root conftest.py makes every other file a group of its own),
so one process grades the class once for all of them.
"""
import types

import pytest

from lms import EN, grade_command, moodle_export


@pytest.fixture(scope="session")
def moodle_class(tmp_path_factory):
    """A Moodle export graded by the command with Moodle's worksheet and a roster (group
    ``moodle-class``): Anna solved every task; Ivan handed in the release untouched, without
    04_block (a submission problem the report must show)."""
    base = tmp_path_factory.mktemp("moodle_class")
    export = moodle_export(base / "export", {("Anna Petrova", "1001"): True, ("Ivan Ivanov", "1002"): False})
    (export / "Ivan Ivanov_1002_assignsubmission_file_" / "04_block.ipynb").unlink()
    sheet = base / "worksheet.csv"
    sheet.write_bytes(EN.encode("utf-8"))
    roster = base / "roster.csv"
    roster.write_text("student_id,email\n1002,ivan@example.org\n", encoding="utf-8")
    out = base / "out"
    done = grade_command(export, "--out", out, "--moodle-worksheet", sheet, "--roster", roster)
    return types.SimpleNamespace(export=export, out=out, done=done)
