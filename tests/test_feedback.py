"""The feedback exporter a grading worker uses (fast: in-process, no kernel)."""
import copy

import jinja2
import nbformat
from nbconvert.exporters import HTMLExporter

from autograder.course import HIDDEN_BEGIN
from autograder.worker.feedback import TEMPLATES, FeedbackExporter, StripHiddenTests


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Шаг 1"),
                nbformat.v4.new_code_cell(f"assert 1 + 1 == 2\n{HIDDEN_BEGIN}\nsecret_check()")]
    return nb


def test_pages_are_nbconverts_and_later_exporters_compile_no_template(monkeypatch):
    """nbgrader makes an exporter per student: the second compiles nothing, the pages match."""
    compiled = []
    compile_template = jinja2.Environment.compile

    def counted(self, *args, **kwargs):
        compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return compile_template(self, *args, **kwargs)
    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    monkeypatch.setattr(TEMPLATES, "_code", {})  # as in a new worker
    nb = _notebook()
    plain, _ = HTMLExporter().from_notebook_node(copy.deepcopy(nb))
    compiled.clear()
    first, _ = FeedbackExporter().from_notebook_node(copy.deepcopy(nb))
    assert compiled, "the first exporter compiles its templates"
    compiled.clear()
    second, _ = FeedbackExporter().from_notebook_node(copy.deepcopy(nb))
    assert compiled == [] and first == second == plain


def test_hidden_part_of_a_test_cell_is_not_shown():
    nb, _ = StripHiddenTests().preprocess(_notebook(), {})
    shown = nb.cells[1].source
    assert "secret_check" not in shown and HIDDEN_BEGIN not in shown
    assert shown.startswith("assert 1 + 1 == 2") and "скрытые тесты не показываются" in shown
