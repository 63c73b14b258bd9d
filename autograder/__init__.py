"""Grading package of the course: hidden checks, grader, report."""
