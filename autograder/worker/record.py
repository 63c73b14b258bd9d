"""What one student's run produced, as data: a verdict per task, events per notebook, and
the grader's own failures.

RUNS IN A GRADING WORKER. One ``Record`` per student is passed to everything that adds to
it (the Execute step, the kernel session, the hidden checks, the rescue); the worker turns
it into the student's result record (``results.StudentResult``).
"""
import dataclasses

from ..results import Event


@dataclasses.dataclass
class Record:
    verdicts: dict = dataclasses.field(default_factory=dict)  # task -> TaskResult
    events: list = dataclasses.field(default_factory=list)    # [Event], one per notebook and kind
    errors: list = dataclasses.field(default_factory=list)    # the grader's own failures (text)

    def has_event(self, notebook, kind):
        return any(e.notebook == notebook and e.kind == kind for e in self.events)

    def event(self, notebook, kind, detail=""):
        if not self.has_event(notebook, kind):
            self.events.append(Event(notebook, kind, detail))


def stop_event(km):
    """(event kind, Russian words) for a kernel that stopped: a limit its sandbox hit, or death."""
    if getattr(km, "memory_exceeded", False):
        return "memory", f"превышен лимит памяти ({km.memory_limit_mb} МиБ)"
    if getattr(km, "disk_exceeded", False):
        return "disk", f"превышен лимит на файлы ({km.disk_limit_mb} МиБ)"
    return "kernel_died", "ядро упало"
