"""Code that runs inside the student's (sandboxed) kernel: torch and the standard
library only. Sent there as source text; never imports the rest of the grader."""
