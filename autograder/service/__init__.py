"""The submission service (``python -m autograder serve``): students upload, the same grader
grades, results and feedback come back before the deadline; the instructor's desk, live.

RUNS IN THE SERVICE PROCESS (uvicorn); grading runs in the batch command's worker pool,
reached through ``grading.py`` alone. One job per module: ``policy`` (the course's rules),
``storage`` (the database), ``auth`` (tokens, sessions, CSRF), ``uploads`` (untrusted files
in, notebooks out), ``queue`` (fair, durable dispatch), ``grading`` (the adapter to the
batch grader), ``views`` (what a student and an instructor are shown), ``app`` (the web
routes and headers), ``cli`` (``serve`` and ``--issue-tokens``), ``options`` (its command line).
"""
