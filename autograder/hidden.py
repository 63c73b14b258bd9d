"""Hidden checks run inside the kernel (instructor notebooks, plain nbgrader).

The graders' own command never runs this: it probes the kernel and compares
outside it (see ``autograder.execute``). This is for ``nbval`` on ``source/``
and for instructors who run stock ``nbgrader autograde``.
"""
from . import checks, probe


def check(task, namespace, seed=0):
    """Raise AssertionError on 0 points; return partial points, else None."""
    def verdict_for(own_deps):
        cases = checks.make_cases(task, seed, own_deps)
        return checks.grade(task, cases, probe.run_cases(task, namespace, cases))

    verdict = checks.best_verdict(task, verdict_for)
    print(verdict.message)
    if verdict.points == 0:
        raise AssertionError(verdict.message)
    if verdict.points < verdict.max_points:
        return verdict.points
    return None
