"""nbgrader's feedback pages, made by a grading worker: no hidden-test source reaches
students, and the page templates are compiled once per worker, not once per student.

RUNS IN A GRADING WORKER (nbgrader's generate_feedback).
"""
import jinja2
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor

from ..course import HIDDEN_BEGIN
from ..notebooks import visible_part


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


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter sharing ``TEMPLATES``: nbgrader makes a new exporter
    (and Jinja environment) for every student, which compiled the same templates each
    time (0.75 CPU-s for six students in one worker; 0.27, the first one's, shared)."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = TEMPLATES
        return environment
