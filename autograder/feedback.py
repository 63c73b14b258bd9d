"""Preprocessors for the feedback pages: no hidden-test source reaches students."""
from nbgrader.preprocessors import NbGraderPreprocessor

from .execute import HIDDEN_MARK, visible_part


class StripHiddenTests(NbGraderPreprocessor):
    """Show test cells without their hidden part."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_MARK in cell.source:
            cell.source = visible_part(cell.source) + "\n# (скрытые тесты не показываются)"
        return cell, resources
