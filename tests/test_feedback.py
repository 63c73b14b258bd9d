"""The feedback exporter a grading worker uses (fast: in-process, no kernel)."""
import copy

import jinja2
import nbformat

from autograder.course import HIDDEN_BEGIN
from autograder.worker.feedback import TEMPLATES, FeedbackExporter, StripHiddenTests


RESOURCES = {"nbgrader": {"notebook": "01_head", "score": 1, "max_score": 2, "late_penalty": 0}}
SCRIPTED = "window.pwned = 1"


def _notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Шаг 1"),
                nbformat.v4.new_code_cell(f"assert 1 + 1 == 2\n{HIDDEN_BEGIN}\nsecret_check()")]
    return nb


def test_later_exporters_compile_no_template(monkeypatch):
    """nbgrader makes an exporter per student: the second compiles nothing, the pages match."""
    compiled = []
    compile_template = jinja2.Environment.compile

    def counted(self, *args, **kwargs):
        compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
        return compile_template(self, *args, **kwargs)
    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    monkeypatch.setattr(TEMPLATES, "_code", {})  # as in a new worker
    nb = _notebook()
    first, _ = FeedbackExporter().from_notebook_node(copy.deepcopy(nb), RESOURCES)
    assert compiled, "the first exporter compiles its templates"
    compiled.clear()
    second, _ = FeedbackExporter().from_notebook_node(copy.deepcopy(nb), RESOURCES)
    assert compiled == [] and first == second
    assert "<h1" in first and "Шаг 1" in first


def test_hidden_part_of_a_test_cell_is_not_shown():
    nb, _ = StripHiddenTests().preprocess(_notebook(), {})
    shown = nb.cells[1].source
    assert "secret_check" not in shown and HIDDEN_BEGIN not in shown
    assert shown.startswith("assert 1 + 1 == 2") and "скрытые тесты не показываются" in shown


def _hostile():
    """What a student can put into a page: HTML in markdown, HTML, Markdown, JavaScript, widget
    and SVG outputs, widget state in the notebook's metadata."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "version_major": 2, "version_minor": 0, "x": "</script><script>%s</script>" % SCRIPTED}}
    output = nbformat.v4.new_output
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Шаг\n\n<script>%s</script>\n\n<img src=x onerror='%s'> "
                                      "<a href='javascript:%s'>ссылка</a> <iframe src='http://example.org'></iframe>"
                                      "\n\n| a | b |\n|---|---|\n| 1 | 2 |" % (SCRIPTED, SCRIPTED, SCRIPTED)),
        nbformat.v4.new_code_cell("x", outputs=[
            output("display_data", data={"text/html": "<b onclick='%s'>жирный</b><script>%s</script>"
                                                      "<form action='http://example.org'><input></form>"
                                                      % (SCRIPTED, SCRIPTED), "text/plain": "b"}),
            output("display_data", data={"application/javascript": SCRIPTED, "text/plain": "js"}),
            output("display_data", data={"application/vnd.jupyter.widget-view+json": {
                "model_id": "</script><script>%s</script>" % SCRIPTED, "version_major": 2, "version_minor": 0},
                "text/plain": "widget"}),
            output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'>"
                                                          "<script>%s</script></svg>" % SCRIPTED}),
            output("display_data", data={"text/markdown": "<script>%s</script>" % SCRIPTED}),
        ])]
    return nb


def test_student_html_is_sanitised_and_the_page_runs_no_script():
    page, _ = FeedbackExporter().from_notebook_node(_hostile(), RESOURCES)
    head, body = page.split("</head>", 1)
    first = head.split("<head>", 1)[1].lstrip().split(">", 1)[0]  # the policy comes before anything else
    assert first.startswith("<meta") and "Content-Security-Policy" in first and "script-src 'none'" in first
    assert "<script" not in head.lower()
    lowered = body.lower()
    for needle in ("<script", "onerror", "onclick", "javascript:", "<iframe", "<form", "http://example.org"):
        assert needle not in lowered, needle
    assert "<table>" in page and "<h1" in page and "жирный" in page          # what is harmless stays
    assert "вывод JavaScript не показывается" in page and "<pre>widget</pre>" in page  # a widget's text
    assert "data:image/svg+xml;base64," in page                               # SVG only as an image


def test_the_accessibility_pass_gives_nbconverts_page():
    """The page's images get a text as nbconvert's own pass (a BeautifulSoup parse of the page)
    gives them, and nothing else changes (a student's div named like a notebook's cell stays as
    it is): the same document, markup normalised alike."""
    from bs4 import BeautifulSoup
    from nbconvert.exporters import HTMLExporter
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    nb = _notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f'<img src="data:image/png;base64,{pixel}">\n\n'
                                                  '<div class="jp-Cell-inputWrapper">ввод</div>'))
    nb.cells.append(nbformat.v4.new_code_cell("show()", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="Head: ошибок не найдено\n"),
        nbformat.v4.new_output("display_data", data={"image/png": pixel, "text/plain": "<Figure>"})]))
    ours, _ = FeedbackExporter().from_notebook_node(nb, copy.deepcopy(RESOURCES))
    stock, _ = HTMLExporter.from_notebook_node(FeedbackExporter(), nb, copy.deepcopy(RESOURCES))
    assert str(BeautifulSoup(ours, features="html.parser")) == stock
    assert stock.count("No description has been provided") == 2 and 'class="jp-Cell-inputWrapper"' in stock


def _student(solution, picture):
    """A student's page: the cells given to everyone, a solution of their own, and a markdown
    cell whose text is everyone's but whose attachment is theirs."""
    nb = _notebook()
    nb.cells.append(nbformat.v4.new_code_cell("class Head(nn.Module):\n    pass  # дано"))
    nb.cells.append(nbformat.v4.new_code_cell(solution))
    attached = nbformat.v4.new_markdown_cell("![рисунок](attachment:p.png)")
    attached.attachments = {"p.png": {"image/png": picture}}
    nb.cells.append(attached)
    return nb


def test_cells_given_to_everyone_are_rendered_once_per_worker_and_the_pages_stay_nbconverts(monkeypatch):
    """Code and markdown every student has are highlighted and rendered once in a worker; a page
    made from those remembered renderings is the page made without them, and a markdown cell
    with an attachment is rendered for its own notebook."""
    from nbconvert.exporters import HTMLExporter
    from nbconvert.filters import highlight
    from autograder.worker import feedback
    highlighted, rendered = [], []
    pygments_highlight, markdown2html = highlight._pygments_highlight, HTMLExporter.markdown2html

    def counted_highlight(source, *args, **kwargs):
        highlighted.append(source)
        return pygments_highlight(source, *args, **kwargs)

    @jinja2.pass_context
    def counted_markdown(self, context, source):
        rendered.append(source)
        return markdown2html(self, context, source)
    monkeypatch.setattr(highlight, "_pygments_highlight", counted_highlight)
    monkeypatch.setattr(HTMLExporter, "markdown2html", counted_markdown)
    monkeypatch.setattr(feedback, "RENDERED_MARKDOWN", {})
    feedback._highlighted.cache_clear()
    red, blue = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==", \
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPj/HwADBwIAMCbHYQAAAABJRU5ErkJggg=="
    first, _ = FeedbackExporter().from_notebook_node(_student("x = 1", red), copy.deepcopy(RESOURCES))
    highlighted.clear(), rendered.clear()
    theirs = _student("x = 2", blue)
    second, _ = FeedbackExporter().from_notebook_node(copy.deepcopy(theirs), copy.deepcopy(RESOURCES))
    assert highlighted == ["x = 2"]                                  # only the code of their own
    assert rendered == ["![рисунок](attachment:p.png)"]              # only the cell with an attachment
    assert red in first and blue not in first and blue in second and red not in second
    feedback._highlighted.cache_clear()
    monkeypatch.setattr(feedback, "RENDERED_MARKDOWN", {})
    unremembered, _ = FeedbackExporter().from_notebook_node(theirs, copy.deepcopy(RESOURCES))
    assert second == unremembered and "Шаг 1" in second and "x</span> <span" in second.replace("\n", " ")



def test_a_students_large_text_is_rendered_and_not_remembered(monkeypatch):
    """A worker keeps only the small texts every student shares: a large output, code or
    markdown cell of one student (up to a 3 MiB message each) is rendered and let go."""
    from autograder.worker import feedback
    monkeypatch.setattr(feedback, "RENDERED_MARKDOWN", {})
    feedback._highlighted.cache_clear()
    feedback._cleaned.cache_clear()
    large = "x = 1\n" * (feedback.REMEMBERED_CHARS // 6 + 1)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# " + large),
                nbformat.v4.new_code_cell(large, outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": "<b>" + large + "</b>", "text/plain": "x"})])]
    page, _ = FeedbackExporter().from_notebook_node(nb, copy.deepcopy(RESOURCES))
    lines = feedback.REMEMBERED_CHARS // 6
    assert page.count("x = 1") >= 2 * lines                       # the markdown and the output in full,
    assert page.count('<span class="mi">1</span>') >= lines       # and the code highlighted in full
    assert feedback.RENDERED_MARKDOWN == {}
    assert feedback._highlighted.cache_info().currsize == 0
    assert feedback._cleaned.cache_info().currsize == 0
    assert feedback.safe_html("<b>small</b>") == "<b>small</b>"                # a small one is kept
    assert feedback._cleaned.cache_info().currsize == 1


def test_a_cell_of_megabytes_is_shown_cut_unhighlighted_and_inline_images_do_not_count():
    """Highlighting took some 20 CPU-s a megabyte of code (markdown 10), with no limit but the
    file's 100 MB: a cell's text over SHOWN_CHARS is shown cut, as text. A markdown cell whose
    length is an inline image (Colab keeps pasted images so) is rendered as ever."""
    import base64
    from autograder.worker import feedback
    code = "x = [1, 2, 3]  # " + "padding " * 250_000 + "<script>" + SCRIPTED + "</script>\n"
    notes = "*заметка* " * 50_000 + "<img src=x onerror=alert(1)>"
    image = "![скриншот](data:image/png;base64," + base64.b64encode(bytes(300_000)).decode() + ")"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code), nbformat.v4.new_markdown_cell(notes),
                nbformat.v4.new_markdown_cell(image)]
    page, _ = FeedbackExporter().from_notebook_node(nb, copy.deepcopy(RESOURCES))
    cut = f"показаны первые {feedback.SHOWN_CHARS:,}".replace(",", " ")
    assert page.count(cut) == 2 and f"длиной {len(code):,} символов".replace(",", " ") in page
    assert len(page) < 2 * feedback.SHOWN_CHARS + 3 * len(image) + 1_000_000, len(page)
    assert SCRIPTED not in page and "onerror" not in page and "<script>" not in page.split("</head>")[1]
    assert page.count("&lt;em&gt;") == 0 and "*заметка* *заметка*" in page   # shown as text, not rendered
    assert '<img src="data:image/png;base64,' in page and 'alt="скриншот"' in page   # the image still shown


def test_the_page_speaks_russian_where_nbgrader_wrote_english():
    """The headings nbgrader's feedback template writes (the notebook's and each graded cell's
    score, the table of contents, the labels) are Russian, as the rest of the page is."""
    nb = nbformat.v4.new_notebook()
    solution = nbformat.v4.new_code_cell("class Head: pass")
    solution.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "head_solution"}
    tests = nbformat.v4.new_code_cell("assert True")
    tests.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": "head_tests",
                                  "points": 2, "score": 1.5, "comment": "почти"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Шаг 1"), solution, tests]
    page, _ = FeedbackExporter().from_notebook_node(nb, RESOURCES)
    for english in ("Score", "Test cell", "Student's answer", "(Top)", "Comments", "Grade cell"):
        assert english not in page, english
    assert "01_head (баллы: 1.0 из 2.0)" in page
    assert '<a href="#head_tests">Проверочная ячейка</a> (баллы: 1.5 из 2.0)' in page
    assert "Ваше решение" in page and "Баллы: 1.5 из 2.0" in page and "(к началу)" in page
