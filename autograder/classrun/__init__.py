"""The class run, in the main process: collect submissions, stage them, run the
worker pool, merge the gradebook, write grades, feedback and the report."""
