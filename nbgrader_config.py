"""nbgrader configuration of the course: the one configuration, used by `make release`,
formgrader and the grade command (which loads this file and sets the course root).
The stub and names come from the course table, autograder/course.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autograder.course import COURSE_ID, STUB  # noqa: E402

c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = COURSE_ID
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

# Students see the seed's own stub between its own markers.
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {"python": STUB}
c.ClearSolutions.enforce_metadata = True

# Release notebooks are committed without outputs; no execution on release.
c.GenerateAssignment.create_assignment = True
c.ClearOutput.enabled = True

# Students who delete or retype cells still get graded (nbgrader #1941).
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = 120
