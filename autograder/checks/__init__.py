"""Pure checks, run in the grader's own processes: no nbgrader, no kernel.

``cases`` makes the secret inputs and weights, ``reference`` computes what a
correct class (or a known wrong variant, ``mistakes``) returns on them, and
``scoring`` compares what a student's class returned, scores it and names the
mistakes.
"""
