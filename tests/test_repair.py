"""Submissions as students save them: ``repair.load`` reads them, ``repair.restore`` makes them gradable."""
import copy
import json

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.classrun import repair
from autograder.course import GRADED_NOTEBOOKS, NOTEBOOKS, RELEASE, SOURCE, TASK_OF_NOTEBOOK
from autograder.notebooks import paste_body, solution_body
from autograder.results import Note

TASK_NOTEBOOKS = list(GRADED_NOTEBOOKS)


def release(name):
    return nbformat.read(str(RELEASE / f"{name}.ipynb"), as_version=4)


def reference(name):
    """The release notebook with the reference body pasted in (as a good student saves it)."""
    nb = release(name)
    task = TASK_OF_NOTEBOOK.get(name)
    if task:
        body = solution_body(nbformat.read(str(SOURCE / f"{name}.ipynb"), as_version=4), task.key)
        paste_body(nb, task.key, body)
    return nb


def layout(nb):
    """Per cell: (grade id or None, exported?)."""
    return [(repair._grade_id(c), "export" in c.metadata.get("tags", [])) for c in nb.cells]


def copied(nb, metadata, cell_metadata=None):
    """Cells retyped into a new notebook: no nbgrader metadata, no tags."""
    new = nbformat.v4.new_notebook(metadata=metadata)
    for cell in nb.cells:
        make = nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
        new.cells.append(make(cell.source, metadata=copy.deepcopy(cell_metadata or {})))
    return new


def colab(nb):
    return copied(nb, {"colab": {"provenance": [], "toc_visible": True},
                       "kernelspec": {"name": "python3", "display_name": "Python 3"}})


def vscode(nb):
    return copied(nb, {"language_info": {"name": "python", "version": "3.11.4"},
                       "vscode": {"interpreter": {"hash": "0123abcd"}},
                       "kernelspec": {"name": "python3", "display_name": ".venv (Python 3.11.4)"}},
                  {"vscode": {"languageId": "python"}})


def as_bytes(nb):
    return nbformat.writes(nb).encode("utf-8")


def repaired(nb, name):
    """load + restore, as the grader does; also checks nbgrader accepts the metadata."""
    loaded = repair.load(as_bytes(nb) if not isinstance(nb, bytes) else nb)
    notes = [Note(name, kind, fields).status for kind, fields in repair.restore(loaded, release(name))]
    MetadataValidator().validate_nb(loaded)
    return loaded, notes


def grade_ids(nb):
    return sorted(g for g, _ in layout(nb) if g)


# ---- re-created notebooks

@pytest.mark.parametrize("name", TASK_NOTEBOOKS)
@pytest.mark.parametrize("recreate", [colab, vscode])
def test_recreated_notebook_gets_release_metadata_on_the_right_cells(name, recreate):
    original = reference(name)
    nb, notes = repaired(recreate(original), name)
    assert layout(nb) == layout(original)
    for cell, want in zip(nb.cells, original.cells):
        if repair._grade_id(want):
            assert cell.metadata["nbgrader"] == want.metadata["nbgrader"]
            assert cell.source == want.source   # content untouched
    assert notes == ["nbgrader metadata restored by content (2 cells)", "export tags restored (2 cells)"]


def test_recreated_data_notebook_gets_its_export_tags():
    original = reference("00_data")
    nb, notes = repaired(colab(original), "00_data")
    assert layout(nb) == layout(original)
    exported = sum(e for _, e in layout(original))
    assert exported > 5 and notes == [f"export tags restored ({exported} cells)"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_untouched_notebook_needs_no_repair(name):
    original = reference(name)
    nb, notes = repaired(original, name)
    assert notes == [] and layout(nb) == layout(original)


def test_colab_copy_with_a_class_redefined_later_grades_the_last_definition():
    original = reference("01_head")
    student = colab(original)
    student.cells.append(nbformat.v4.new_code_cell("class Head(nn.Module):\n    pass\n"))
    nb, _ = repaired(student, "01_head")
    assert repair._grade_id(nb.cells[-1]) == "head_solution"
    assert grade_ids(nb) == ["head_solution", "head_tests"]


def test_a_marked_solution_keeps_its_metadata_when_the_class_is_redefined_later():
    original = reference("01_head")
    original.cells.append(nbformat.v4.new_code_cell("class Head(nn.Module):\n    pass\n"))
    nb, notes = repaired(original, "01_head")
    assert layout(nb) == layout(original) and notes == []


def test_syntax_error_in_the_class_is_still_the_solution_cell():
    original = reference("02_multihead_attention")
    student = colab(original)
    solution = next(i for i, (g, _) in enumerate(layout(original)) if g == "multihead_solution")
    student.cells[solution].source = student.cells[solution].source.replace("def forward(self, x):",
                                                                            "def forward(self, x)")
    with pytest.raises(SyntaxError):
        compile(student.cells[solution].source, "cell", "exec")
    nb, _ = repaired(student, "02_multihead_attention")
    assert layout(nb) == layout(original)


def test_magics_in_the_class_cell_do_not_hide_it():
    original = reference("03_feedforward")
    student = colab(original)
    solution = next(i for i, (g, _) in enumerate(layout(original)) if g == "feedforward_solution")
    student.cells[solution].source = "%%time\n!nvidia-smi\n" + student.cells[solution].source
    nb, _ = repaired(student, "03_feedforward")
    assert layout(nb) == layout(original)


def test_a_class_named_only_in_a_string_is_not_a_definition():
    assert not repair.defines_class('text = """\nclass Head(nn.Module):\n"""', "Head")
    assert repair.defines_class("if True:\n    class Head:\n        pass", "Head")
    assert not repair.defines_class("def f():\n    class Head:\n        pass", "Head")
    assert repair.defines_class("class Head(nn.Module)\n    pass", "Head")   # does not parse


def test_missing_test_cell_is_inserted_after_the_solution():
    original = reference("04_block")
    student = colab(original)
    tests = next(i for i, (g, _) in enumerate(layout(original)) if g == "block_tests")
    del student.cells[tests]
    nb, notes = repaired(student, "04_block")
    assert len(nb.cells) == len(original.cells)
    ids = [g for g, _ in layout(nb)]
    assert ids.index("block_tests") == ids.index("block_solution") + 1
    assert grade_ids(nb) == ["block_solution", "block_tests"]
    inserted = nb.cells[ids.index("block_tests")]
    assert inserted.source == release("04_block").cells[tests].source
    assert inserted.metadata["nbgrader"] == release("04_block").cells[tests].metadata["nbgrader"]
    assert "test cell missing: release cell inserted" in notes
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def test_edited_asserts_still_find_the_test_cell():
    original = reference("05_gpt_model")
    student = colab(original)
    tests = next(i for i, (g, _) in enumerate(layout(original)) if g == "gpt_model_tests")
    lines = student.cells[tests].source.split("\n")
    student.cells[tests].source = "\n".join(lines[:-2] + ["print('мои проверки')"])
    student.cells.insert(tests + 1, nbformat.v4.new_code_cell("print(model)"))
    nb, _ = repaired(student, "05_gpt_model")
    assert repair._grade_id(nb.cells[tests]) == "gpt_model_tests"
    assert grade_ids(nb) == ["gpt_model_solution", "gpt_model_tests"]


def test_missing_class_inserts_the_release_stub_and_says_so():
    original = reference("01_head")
    student = colab(original)
    student.cells = [c for c in student.cells if "class Head" not in c.source]
    nb, notes = repaired(student, "01_head")
    assert grade_ids(nb) == ["head_solution", "head_tests"]
    solution = next(c for c in nb.cells if repair._grade_id(c) == "head_solution")
    assert "raise NotImplementedError()" in solution.source
    assert "class Head not found: release cell inserted" in notes


# ---- mangled metadata

def test_renamed_partial_and_repointed_metadata_is_restored():
    original = reference("01_head")
    student = copy.deepcopy(original)
    ids = [g for g, _ in layout(original)]
    student.cells[ids.index("head_solution")].metadata["nbgrader"]["grade_id"] = "my_head"
    student.cells[ids.index("head_tests")].metadata["nbgrader"] = {"grade_id": "head_tests", "points": 100}
    nb, notes = repaired(student, "01_head")
    assert layout(nb) == layout(original)
    tests = nb.cells[ids.index("head_tests")]
    assert tests.metadata["nbgrader"] == original.cells[ids.index("head_tests")].metadata["nbgrader"]
    assert tests.metadata["nbgrader"]["points"] == 2
    assert notes[0] == "nbgrader metadata restored by content (2 cells)"
    assert "cell 'my_head' not in the assignment: graded as a plain cell" in notes


def test_metadata_on_a_cell_without_the_class_moves_to_the_class():
    original = reference("03_feedforward")
    student = copy.deepcopy(original)
    ids = [g for g, _ in layout(original)]
    solution = ids.index("feedforward_solution")
    moved = student.cells[solution]
    student.cells.insert(solution, nbformat.v4.new_code_cell(moved.source))   # class in a new cell
    moved.source = "# здесь было решение"
    nb, _ = repaired(student, "03_feedforward")
    assert repair._grade_id(nb.cells[solution]) == "feedforward_solution"
    assert repair._grade_id(nb.cells[solution + 1]) is None


def test_duplicated_and_foreign_ids_leave_one_cell_per_release_id():
    original = reference("04_block")
    student = copy.deepcopy(original)
    ids = [g for g, _ in layout(original)]
    tests = student.cells[ids.index("block_tests")]
    bonus = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": dict(tests.metadata["nbgrader"],
                                                                         grade_id="block_bonus")})
    twin = nbformat.v4.new_code_cell("print('ok')", metadata=copy.deepcopy(tests.metadata))
    student.cells += [bonus, twin]
    nb, notes = repaired(student, "04_block")
    assert grade_ids(nb) == ["block_solution", "block_tests"]
    assert repair._grade_id(nb.cells[-1]) == "block_tests"       # the last keeps it
    assert "cell 'block_tests' repeated: the last one kept" in notes
    assert "cell 'block_bonus' not in the assignment: graded as a plain cell" in notes


# ---- how the file is saved

def test_bom_and_crlf_are_read():
    original = reference("01_head")
    raw = b"\xef\xbb\xbf" + nbformat.writes(original).replace("\n", "\r\n").encode("utf-8")
    nb, notes = repaired(raw, "01_head")
    assert notes == [] and layout(nb) == layout(original)
    assert [c.source for c in nb.cells] == [c.source for c in original.cells]


@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"),
                                             ("utf-32", "UTF-32"), ("cp1251", "cp1251"), ("utf-8-sig", None)])
def test_a_notebook_resaved_in_another_encoding_is_read_and_the_encoding_named(encoding, named):
    """Notepad's «Юникод» and PowerShell's ``>`` write UTF-16 (with a BOM or, as ``-Encoding
    Unicode`` without one, none), an editor set to Russian Windows' code page cp1251."""
    original = reference("01_head")
    text = nbformat.writes(original)
    assert sum("а" <= ch <= "я" for ch in text) > 100                  # Russian text to read right
    nb, found = repair.read(text.encode(encoding, "replace" if encoding == "cp1251" else "strict"))
    assert found == ([("recoded", {"encoding": named})] if named else [])
    kept = [c.source for c in original.cells]
    if encoding == "cp1251":    # the few characters cp1251 lacks (such as «≈») become «?»
        kept = [source.encode("cp1251", "replace").decode("cp1251") for source in kept]
    assert [c.source for c in nb.cells] == kept


def test_an_8_bit_file_that_does_not_read_as_russian_is_read_as_western_windows():
    data = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "Größe für Müller, naïve Bär"}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb, found = repair.read(json.dumps(data, ensure_ascii=False).encode("cp1252"))
    assert (found, nb.cells[0].source) == ([("recoded", {"encoding": "cp1252"})], "Größe für Müller, naïve Bär")


def test_list_sources_crlf_inside_and_missing_keys_are_read():
    original = reference("02_multihead_attention")
    data = json.loads(nbformat.writes(original))
    del data["metadata"]
    for cell in data["cells"]:
        text = "".join(cell["source"])
        cell["source"] = [line.replace("\n", "\r\n") for line in text.splitlines(True)]
        for key in ("outputs", "execution_count", "id", "metadata"):
            if repair._grade_id(nbformat.from_dict(cell)) is None:
                cell.pop(key, None)
    nb, notes = repaired(json.dumps(data).encode(), "02_multihead_attention")
    assert notes == ["export tags restored (2 cells)"]
    assert layout(nb) == layout(original)
    assert [c.source for c in nb.cells] == [c.source for c in original.cells]
    assert nbformat.validate(nb) is None


def test_nbformat_3_is_read():
    original = reference("05_gpt_model")
    raw = nbformat.writes(nbformat.convert(copy.deepcopy(original), 3)).encode()
    nb, notes = repaired(raw, "05_gpt_model")
    assert notes == [] and layout(nb) == layout(original)


def test_outputs_and_counts_are_cleared_widget_state_and_colab_metadata_kept():
    original = colab(reference("01_head"))
    original.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    for cell in original.cells:
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", text="x\n")]
    nb = repair.load(as_bytes(original))
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "widgets" in nb.metadata and "colab" in nb.metadata
    assert nb.nbformat == 4


def test_an_old_saves_tail_after_the_notebook_is_dropped_and_named():
    """A save written over a longer one without cutting the file (a sync tool, a network drive):
    Jupyter refuses it («Extra data»); the grader reads the new save and says what it dropped."""
    new, old = reference("01_head"), release("01_head")
    old.cells.append(nbformat.v4.new_markdown_cell("длинное старое сохранение " * 200))
    written, before = as_bytes(new), as_bytes(old)
    assert len(before) > len(written)
    raw = written + before[len(written):]
    with pytest.raises(ValueError):
        json.loads(raw)
    nb, found = repair.read(raw)
    assert [c.source for c in nb.cells] == [c.source for c in new.cells]
    assert found == [("trailing_text", {"chars": len(before[len(written):].decode("utf-8", "replace").strip())})]
    words = Note("01_head", "trailing_text", found[0][1])
    assert "after the notebook's end ignored" in words.status and "хвост прежнего сохранения" in words.words
    twice, found = repair.read(written + b"\n" + written)   # two saves one after the other
    assert [c.source for c in twice.cells] == [c.source for c in new.cells] and found[0][0] == "trailing_text"
    letter = before.index("а".encode(), len(written)) + 1       # the old tail cut in the middle of a letter
    nb, found = repair.read(written + before[letter:])
    assert [c.source for c in nb.cells] == [c.source for c in new.cells]
    assert [kind for kind, _ in found] == ["trailing_text"]     # UTF-8 still, not a Windows code page


def test_utf8_with_a_damaged_end_is_utf8_and_binary_data_stays_binary():
    """UTF-8 letters, then bytes UTF-8 refuses (a tail cut mid-letter): UTF-8 still. Not for
    binary data whose first bytes happen to be UTF-8 (an Excel .xlsx, a zip: zero bytes), nor for
    Russian Windows text whose first capital is followed by «»» (one UTF-8 pair, by chance)."""
    from autograder.classrun import encodings
    text = "Привет, это ноутбук: " * 5
    assert encodings.file_text(text.encode("utf-8") + "ф".encode("utf-8")[:1]) == (text + "\ufffd", None)
    assert encodings.file_text(b"PK\x03\x04" + "Иванов Пётр".encode("utf-8") + b"\x00\xff\x10") == (None, None)
    windows = "Я» сказал Иван: привет, как дела у тебя сегодня"
    assert encodings.file_text(windows.encode("cp1251")) == (windows, "cp1251")


def test_a_file_cut_short_keeps_its_whole_cells_and_says_so():
    """A save interrupted (a crash, a full disk, an upload cut off): Jupyter refuses the file
    («Unterminated string»); its cells before the cut are the student's work, read and named."""
    nb = reference("01_head")
    raw = as_bytes(nb)
    tests = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "head_tests")
    after_tests = raw.index(b'"cell_type"', raw.index(b'"head_tests"')) + 5    # inside the cell after the tests
    loaded, found = repair.read(raw[:after_tests])
    assert [c.source for c in loaded.cells] == [c.source for c in nb.cells[:tests + 1]]
    assert found == [("cut_short", {"count": tests + 1})]
    restored, notes = repaired(loaded, "01_head")
    assert [c.source for c in restored.cells][:tests + 1] == [c.source for c in nb.cells[:tests + 1]]
    assert grade_ids(restored) == grade_ids(nb), notes    # nbgrader's cells all there to grade
    words = Note("01_head", "cut_short", found[0][1])
    assert "cut short or damaged" in words.status and "прочитаны его первые целые ячейки" in words.words
    damaged = raw.replace(b'"head_tests"', b'"head_tests",,', 1)    # a comma too many: the cells before it
    loaded, found = repair.read(damaged)
    assert found[0][0] == "cut_short" and len(loaded.cells) < len(nb.cells)


@pytest.mark.parametrize("raw, reason", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "not text"),
    (b"\xff\xfe{\x00\"", "not JSON"),                    # UTF-16 cut in the middle of a character
    ("{}".encode("utf-16"), "not a notebook"),
    (b"this is not json", "not JSON"),
    (nbformat.writes(nbformat.v4.new_notebook()).encode()[:20], "not JSON"),
    (b"[1, 2, 3]", "not a notebook"),
    (b'{"name": "x"}', "not a notebook"),
    (b'{"cells": [{"cell_type": "code", "source": 42}]}', "not a notebook"),
    (b'{"cells": ["text"]}', "not a notebook"),
    (b'{"worksheets": [{"cells": [1]}], "nbformat": 3}', "not a notebook"),
    (b'{"worksheets": [{"cells": 5}, 7], "nbformat": 3}', "not a notebook"),
    (b'{"cells": [], "metadata": {}, "nbformat": 4,, "nbformat_minor": 5}', "not JSON"),   # broken, not cut short
    (b'[1, 2] {"cells": []}', "not a notebook"),           # a document before the notebook: not its tail
])
def test_invalid_files_give_their_reason(raw, reason):
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(raw)
    assert info.value.reason == reason


def test_oversized_file_is_refused(monkeypatch):
    monkeypatch.setattr(repair, "MAX_BYTES", 1000)
    raw = as_bytes(nbformat.v4.new_notebook())
    assert len(raw) < 1000 and repair.load(raw).cells == []
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(raw + b" " * 1000)
    assert info.value.reason == "over 100 MB"


@pytest.mark.parametrize("version", [4, 3])
def test_a_notebook_of_too_many_cells_is_refused_before_its_cells_are_read(version):
    """Each cell costs the grader time: over MAX_CELLS the file is refused at once, with its reason."""
    cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(repair.MAX_CELLS)]
    nb = nbformat.v4.new_notebook(cells=cells)
    def raw(nb):
        if version == 4:
            return as_bytes(nb)
        v3 = [{"cell_type": "code", "input": c.source, "language": "python", "outputs": [], "metadata": {}}
              for c in nb.cells]
        return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": v3}]}).encode()
    assert len(repair.load(raw(nb)).cells) == repair.MAX_CELLS
    nb.cells.append(nbformat.v4.new_code_cell("one more"))
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(raw(nb))
    assert info.value.reason == f"over {repair.MAX_CELLS} cells" and "удалите лишние ячейки" in info.value.words


def test_a_notebook_of_too_much_text_is_refused_and_inline_images_do_not_count():
    """A million characters of code and text (the course's notebooks have at most 14,000) is not a
    submission to tokenise and highlight; images pasted into text cells (Colab: data: URLs) are not text."""
    import base64
    image = "![скриншот](data:image/png;base64," + base64.b64encode(bytes(1_500_000)).decode() + ")"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(image),
                                         nbformat.v4.new_code_cell("x = 1\n" * ((repair.MAX_TEXT_CHARS - 100) // 6))])
    assert len(repair.load(as_bytes(nb)).cells) == 2
    nb.cells.append(nbformat.v4.new_code_cell("y = 2\n" * 100))
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(as_bytes(nb))
    assert info.value.reason == "over 1,000,000 characters of code and text" and "удалите лишнее" in info.value.words


def test_a_notebook_of_too_much_metadata_is_refused(monkeypatch):
    """nbgrader copies, reads and writes a notebook's metadata throughout: megabytes of it (widget
    state, a tool's cell metadata) cost the grader more than the student's code."""
    monkeypatch.setattr(repair, "MAX_METADATA_BYTES", 10_000)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"junk": "z" * 4_000})],
                                  metadata={"widgets": {"state": "y" * 4_000}})
    assert len(repair.load(as_bytes(nb)).cells) == 1
    nb.cells.append(nbformat.v4.new_code_cell("y = 2", metadata={"junk": "z" * 4_000}))
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(as_bytes(nb))
    assert info.value.reason == "over 10 MB of metadata" and "чистую копию выданного ноутбука" in info.value.words


@pytest.mark.parametrize("where", ["notebook", "cell", "attachments"])
def test_deeply_nested_metadata_is_refused_not_a_crash(where):
    """600 nested lists in a 1 KB file overflowed nbformat's reader: a RecursionError that stopped
    the whole run. Now the file is refused with its reason; 64 levels are read."""
    def notebook(depth):
        deep = "[" * depth + "]" * depth
        cell = {"cell_type": "markdown", "source": "x", "metadata": {}}
        if where == "notebook":
            return f'{{"cells": [], "metadata": {{"a": {deep}}}}}'.encode()
        cell["metadata" if where == "cell" else "attachments"] = {"a": "DEEP"}
        return json.dumps({"cells": [cell], "metadata": {}}).replace('"DEEP"', deep).encode()
    repair.load(notebook(repair.MAX_METADATA_DEPTH - 2))
    with pytest.raises(repair.InvalidNotebook) as info:
        repair.load(notebook(600))
    assert info.value.reason == f"metadata nested over {repair.MAX_METADATA_DEPTH} levels"


def test_export_tags_go_to_the_closest_cell_not_to_a_later_scratch_cell():
    original = reference("01_head")
    student = colab(original)
    config = next(i for i, c in enumerate(original.cells) if c.source.startswith("config = import_notebook"))
    student.cells.append(nbformat.v4.new_code_cell(original.cells[config].source + "\nprint(config)"))
    nb, _ = repaired(student, "01_head")
    assert layout(nb)[:-1] == layout(original) and layout(nb)[-1] == (None, False)


def test_an_intact_notebook_with_a_copied_export_cell_is_left_alone():
    original = reference("00_data")
    student = copy.deepcopy(original)
    student.cells.insert(3, nbformat.v4.new_code_cell(original.cells[2].source))   # the imports, again
    nb, notes = repaired(student, "00_data")
    assert notes == [] and layout(nb) == layout(student)


def _ranked_match(cells, candidates, release_source, preferred=()):
    """``repair._best_match`` by its definition: every candidate compared, the best key wins."""
    keyed = [((i in preferred, *repair._scores(cells[i].source, release_source), -i), i) for i in candidates]
    keyed = [(key, i) for key, i in keyed if key[1] >= repair.MATCH_THRESHOLD]
    return max(keyed)[1] if keyed else None


def test_the_unchanged_cell_shortcut_picks_what_the_full_ranking_picks():
    """Unchanged cells are found without comparing texts; the answer stays the ranking's, also with
    duplicates, an exact copy outside the preferred cells, and edited or missing cells."""
    nb = reference("00_data")
    code = [c for c in nb.cells if c.cell_type == "code"]
    cells = ([nbformat.v4.new_code_cell(c.source) for c in code]
             + [nbformat.v4.new_code_cell(c.source + "\nprint('edited')") for c in code[:4]]
             + [nbformat.v4.new_code_cell(code[1].source), nbformat.v4.new_code_cell("# " + code[2].source)])
    everyone = list(range(len(cells)))
    shapes = [(everyone, ()), (everyone, {1, len(code) + 1}), (everyone[len(code):], ()),
              (everyone[::2], set(everyone[1::3])), (everyone[len(code) - 2:], {len(code), len(cells) - 2})]
    checked = 0
    for candidates, preferred in shapes:
        for release_cell in code:
            assert (repair._best_match(cells, candidates, release_cell.source, preferred)
                    == _ranked_match(cells, candidates, release_cell.source, preferred)), release_cell.source
            checked += 1
    assert checked == len(shapes) * len(code) > 50
