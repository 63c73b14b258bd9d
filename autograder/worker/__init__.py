"""One student's run, in a grading worker process: nbgrader's autograde with the
probing preprocessor, the sandboxed kernel, the feedback pages, the result record."""
