"""Preprocessor for the feedback pages: no hidden-test source reaches students.

RUNS IN A GRADING WORKER (nbgrader's generate_feedback).
"""
from nbgrader.preprocessors import NbGraderPreprocessor

from ..course import HIDDEN_BEGIN
from ..notebooks import visible_part


class StripHiddenTests(NbGraderPreprocessor):
    """Show test cells without their hidden part."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_BEGIN in cell.source:
            cell.source = visible_part(cell.source) + "\n# (скрытые тесты не показываются)"
        return cell, resources
