"""nbgrader configuration of the course (instructor side)."""
c = get_config()  # noqa: F821  (provided by nbgrader)

c.CourseDirectory.course_id = "gpt-from-scratch"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_assignments = [dict(name="gpt")]

# Students see the seed's own stub between its own markers.
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {
    "python": (
        "# НАЧАЛО ВАШЕГО РЕШЕНИЯ\n"
        "raise NotImplementedError() # удалить эту строку в процессе решения\n"
        "# КОНЕЦ ВАШЕГО РЕШЕНИЯ"
    )
}
c.ClearSolutions.enforce_metadata = True

# Release notebooks are committed without outputs; no execution on release.
c.GenerateAssignment.create_assignment = True
c.ClearOutput.enabled = True

# Students who delete or retype cells still get graded (nbgrader #1941).
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = 120
