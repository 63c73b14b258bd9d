"""Grading package of the course: hidden checks, grader, report."""
import sys

# jsonschema (read by nbformat, which every grading process imports) loads the optional
# rfc3987-syntax package at import, which builds ~35 Earley parsers for its IRI format
# check: 1.2-1.6 CPU-seconds in every process (python-jsonschema/jsonschema#1428). Nothing
# here checks IRIs, so that optional import is skipped, as if the package were absent.
sys.modules.setdefault("rfc3987_syntax", None)
