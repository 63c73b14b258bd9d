"""nbgrader's feedback pages, made by a grading worker: safe to open, no hidden-test source,
and what every student's pages share (the page templates, the highlighted code and rendered
markdown of the cells given to all) made once per worker, not once per student.

RUNS IN A GRADING WORKER (nbgrader's generate_feedback).
"""
import functools
import os
import re
from html import escape

import jinja2
import nbgrader
import nh3
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbgrader.preprocessors import NbGraderPreprocessor

from ..course import HIDDEN_BEGIN
from ..notebooks import text_size, visible_part

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")
FORMGRADER = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
NBGRADER_TEMPLATES = os.path.join(FORMGRADER, "templates")  # its feedback template
BOOTSTRAP_CSS = os.path.join(FORMGRADER, "static", "node_modules", "bootstrap", "dist", "css")
# A feedback page runs no script, loads nothing but what it holds, sends nothing anywhere.
PAGE_POLICY = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "font-src data:; base-uri 'none'; form-action 'none'")
# What student HTML may keep (markdown cells, HTML and Markdown outputs): nh3's tags, with
# class and id for the page's own styling; links and images by ordinary or relative URLs.
SAFE_ATTRIBUTES = {**{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
                   "*": {"class", "id", "title", "lang"}}
SAFE_URL_SCHEMES = {"http", "https", "mailto", "data"}


def _inline_images_only(tag, attribute, value):
    """An image's source is kept only when the page holds it (a data: URL): the page loads nothing."""
    if tag == "img" and attribute == "src" and not value.startswith("data:image/"):
        return None
    return value


# What a worker remembers is the small text every student shares (the course's largest cell has
# 3,824 characters); a student's own large output (up to a 3 MiB message) is rendered and let go.
REMEMBERED_CHARS = 20_000


def safe_html(text):
    """Student HTML without scripts, handlers, styles, frames, forms, foreign schemes or images
    from elsewhere."""
    if not text:
        return ""
    text = str(text)
    return _cleaned(text) if len(text) <= REMEMBERED_CHARS else _cleaned.__wrapped__(text)


@functools.lru_cache(maxsize=2048)
def _cleaned(text):
    return nh3.clean(text, attributes=SAFE_ATTRIBUTES, url_schemes=SAFE_URL_SCHEMES,
                     attribute_filter=_inline_images_only)


@functools.lru_cache(maxsize=4096)
def _highlighted(source, lexer, language, magics_language, formatter_options):
    """nbconvert's highlighting of one cell's code; pure, so each distinct cell is highlighted
    once per worker (the given code and visible tests are the same for every student)."""
    metadata = {"magics_language": magics_language} if magics_language is not None else None
    return Highlight2HTML(pygments_lexer=lexer, extra_formatter_options=dict(formatter_options))(
        source, language, metadata)


# One cell's text on a page. The course's longest cell has 3,824 characters; a student's cell of
# megabytes took the worker some 20 CPU-s a megabyte to highlight (markdown: 10), with no limit
# but the file's 100 MB: such a cell is shown cut, unhighlighted. Images inline in markdown
# (Colab keeps pasted ones as data: URLs) do not count.
SHOWN_CHARS = 100_000


def _cut_note(total):
    return f"… ячейка длиной {total:,} символов, показаны первые {SHOWN_CHARS:,}".replace(",", " ")


def cut_code(source, language):
    """A long cell's code as the page shows it: its start, escaped, unhighlighted, and how much is left out."""
    return (f'<div class="highlight hl-{escape(language or "ipython3")}"><pre><span></span>'
            f'{escape(source[:SHOWN_CHARS])}\n<span class="c1"># {_cut_note(len(source))}</span></pre></div>')


def cut_markdown(source):
    """A long markdown cell's text as the page shows it (as text, not rendered), or None if it is
    short enough to render."""
    if len(source) <= SHOWN_CHARS or text_size(source) <= SHOWN_CHARS:
        return None
    return f"<pre>{escape(source[:SHOWN_CHARS])}</pre><p><em>{_cut_note(len(source))}</em></p>"


# Markdown rendered by ``FeedbackExporter.markdown2html``, by text and settings, for the worker's
# next students (written by that method only; emptied when it holds RENDERED_MAX texts)
RENDERED_MARKDOWN = {}
RENDERED_MAX = 4096


class RememberedHighlight(Highlight2HTML):
    """``Highlight2HTML`` through ``_highlighted``: the same page. With the markdown and the
    sanitising remembered too, a worker's feedback for a student after its first took 0.07 CPU-s
    instead of 0.17 (five students of one class)."""

    def __call__(self, source, language=None, metadata=None):
        if len(source) > SHOWN_CHARS:
            return cut_code(source, language)
        options = tuple(sorted(self.extra_formatter_options.items()))
        if len(source) > REMEMBERED_CHARS or not all(
                isinstance(v, (str, int, float, bool, type(None))) for _, v in options):
            return super().__call__(source, language, metadata)   # large, or an option that cannot be a key
        magics_language = metadata.get("magics_language") if metadata else None
        return _highlighted(source, self.pygments_lexer, language, magics_language, options)


def page_css(path):
    """A style sheet to inline, without the web fonts it would load from beside the page."""
    with open(path, encoding="utf-8") as f:
        return re.sub(r"@font-face\s*\{[^}]*\}", "", f.read())


BOOTSTRAP = page_css(os.path.join(BOOTSTRAP_CSS, "bootstrap.min.css"))


class StripHiddenTests(NbGraderPreprocessor):
    """Show test cells without their hidden part."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_BEGIN in cell.source:
            cell.source = visible_part(cell.source) + "\n# (скрытые тесты не показываются)"
        return cell, resources


class CompiledTemplates(jinja2.BytecodeCache):
    """Jinja's compiled templates kept in memory, keyed by template and checked
    against its source (a changed template is compiled again)."""

    def __init__(self):
        self._code = {}

    def load_bytecode(self, bucket):
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = CompiledTemplates()

# What HTMLExporter's accessibility pass does (nbconvert 7) to a feedback page: an image
# without a text gets one. (Its other step, making inputs and outputs inside `.jp-Notebook`
# focusable, finds nothing in nbgrader's feedback template: the page has no `.jp-Notebook`.)
# Student HTML in the page went through ``safe_html`` first: its images are tags like these.
NO_ALT_IMAGE = re.compile(r"<img(?![^>]*\salt=)")
IMAGE_TEXT = "No description has been provided for this image"


def accessible(html):
    """``html`` with a text on every image, as nbconvert's accessibility pass gives it."""
    return NO_ALT_IMAGE.sub(f'<img alt="{IMAGE_TEXT}"', html)


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback page (``templates/feedback_safe``: its template with student HTML
    sanitised, no script, and ``PAGE_POLICY`` as the page's Content-Security-Policy).

    Its template, sanitising and policy are fixed here, whatever the configuration says:
    a page opened from disk or served beside the report must not run what a student wrote.
    nbgrader makes a new exporter (and Jinja environment) for every student, which compiled
    the same templates each time (0.75 CPU-s for six students in one worker; 0.27, the
    first one's, shared through ``TEMPLATES``)."""

    def __init__(self, *args, **kwargs):
        kwargs.update(extra_template_basedirs=[TEMPLATE_DIR, NBGRADER_TEMPLATES], template_name="feedback_safe",
                      extra_template_paths=[NBGRADER_TEMPLATES, BOOTSTRAP_CSS],
                      sanitize_html=True, skip_svg_encoding=False)  # SVG only inside <img>: it cannot script
        super().__init__(*args, **kwargs)
        self.filters = {**self.filters, "safe_html": safe_html}

    def from_notebook_node(self, nb, resources=None, **kw):
        """HTMLExporter's page, its accessibility pass made on the page's markup (``accessible``)
        instead of a BeautifulSoup parse of the whole page (0.3 CPU-s a student)."""
        nb = nb.copy()
        nb.metadata = {k: v for k, v in nb.metadata.items() if k != "widgets"}  # student data, not shown
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name"))
        resources = self._init_resources(resources)
        self.register_filter("highlight_code", self.filters.get(
            "highlight_code", RememberedHighlight(pygments_lexer=lexer, parent=self)))
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return accessible(html), resources

    @jinja2.pass_context
    def markdown2html(self, context, source):
        """HTMLExporter's markdown, each distinct text rendered once per worker. A text with
        attachments, or with images to embed from disk, depends on more than the text. A text
        over SHOWN_CHARS is shown as text (``cut_markdown``)."""
        cut = cut_markdown(source)
        if cut is not None:
            return cut
        if context.get("cell", {}).get("attachments") or self.embed_images or len(source) > REMEMBERED_CHARS:
            return super().markdown2html(context, source)
        key = (source, self.anchor_link_text, self.exclude_anchor_links, repr(sorted(self.lexer_options.items())))
        html = RENDERED_MARKDOWN.get(key)
        if html is None:
            if len(RENDERED_MARKDOWN) >= RENDERED_MAX:
                RENDERED_MARKDOWN.clear()
            html = RENDERED_MARKDOWN[key] = super().markdown2html(context, source)
        return html

    def _init_resources(self, resources):
        resources = super()._init_resources(resources)
        resources["content_security_policy"] = PAGE_POLICY
        resources["bootstrap_css"] = BOOTSTRAP
        resources.setdefault("nbgrader", {}).setdefault("notebook", resources.get("metadata", {}).get("name", ""))
        return resources

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = TEMPLATES
        return environment
