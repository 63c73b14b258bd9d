"""Grade one student in an nbgrader course folder of its own (nbgrader #174).

Run as ``python -m autograder.worker COURSE STUDENT``; the secret comes on
standard input. Writes ``verdicts.json`` beside the course folder's gradebook.
"""
import argparse
import json
import os
import sys

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from traitlets.config import Config

from .execute import ProbingExecute, shutdown_shared_kernel
from .feedback import StripHiddenTests

ASSIGNMENT = "gpt"
GRADED_NOTEBOOKS = "0[1-5]_*"


def grading_config(course, student, secret, cell_timeout, sandbox, reference_dir=""):
    c = Config()
    c.CourseDirectory.root = course
    c.CourseDirectory.notebook_id = GRADED_NOTEBOOKS
    c.Autograde.autograde_preprocessors = [
        ProbingExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.OverwriteCells.add_missing_cells = True
    c.ProbingExecute.reuse_kernel = True
    c.ProbingExecute.timeout = cell_timeout
    c.ProbingExecute.notebook_timeout = cell_timeout * 3
    c.ProbingExecute.probe_timeout = max(cell_timeout, 60)
    c.ProbingExecute.secret = secret
    c.ProbingExecute.student = student
    c.ProbingExecute.siblings = os.path.join(course, "submitted", student, ASSIGNMENT)
    c.ProbingExecute.reference_dir = reference_dir
    c.ProbingExecute.verdict_file = os.path.join(course, "verdicts.json")
    c.ProbingExecute.kernel_dir = os.path.join(course, "kernel")
    if sandbox:
        c.ProbingExecute.sandbox = True
        data = os.environ.get("GPT_COURSE_DATA")
        c.SandboxedKernelManager.readonly_paths = [data] if data else []
    c.LimitOutput.max_lines = 300
    c.LimitOutput.max_traceback = 60
    c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, StripHiddenTests]
    return c


def grade_student(course, student, secret, cell_timeout=60, sandbox=False, reference_dir=""):
    """Autograde and write feedback for one student; return (ok, error text)."""
    config = grading_config(os.path.abspath(course), student, secret, cell_timeout, sandbox,
                            reference_dir)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    try:
        result = api.autograde(ASSIGNMENT, student, force=True, create=True)
    finally:
        shutdown_shared_kernel()
    feedback = api.generate_feedback(ASSIGNMENT, student, force=True)
    errors = [r.get("error", "") for r in (result, feedback) if not r.get("success")]
    return bool(result.get("success")), "\n".join(errors)


def init_pool(environment):
    """Pool initializer: kernels inherit this environment (and no PYTHONPATH)."""
    os.environ.update(environment)
    os.environ.pop("PYTHONPATH", None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("course")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=int, default=60)
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--reference-dir", default="")
    args = parser.parse_args(argv)
    secret = sys.stdin.readline().strip()
    ok, errors = grade_student(args.course, args.student, secret, args.cell_timeout,
                               args.sandbox, args.reference_dir)
    print(errors, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
