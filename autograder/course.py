"""The course table: every fact about the assignment, in one place.

Tasks, their classes, notebooks, grade ids, points, dependencies and which
behaviours are checked; the assignment's name, the stub markers and the
repository's paths. Everything else in the grader derives from this module.
It imports nothing but the standard library, so any side (kernel, worker,
main process, tests) may read it.
"""
import dataclasses
import fnmatch
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSIGNMENT = "gpt"
COURSE_ID = "gpt-from-scratch"
SOURCE = ROOT / "source" / ASSIGNMENT
RELEASE = ROOT / "release" / ASSIGNMENT
NBGRADER_CONFIG = ROOT / "nbgrader_config.py"
DATA = SOURCE / "data" / "input.txt"

# The seed's stub, between its own markers (nbgrader_config.py reads these).
STUB_BEGIN = "# НАЧАЛО ВАШЕГО РЕШЕНИЯ"
STUB_END = "# КОНЕЦ ВАШЕГО РЕШЕНИЯ"
STUB = STUB_BEGIN + "\nraise NotImplementedError() # удалить эту строку в процессе решения\n" + STUB_END
SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"


@dataclasses.dataclass(frozen=True)
class Part:
    """A part of a task's partial credit, scored only on the secret cases that test it.

    ``cases``: the case kinds (checks/cases.py) whose results this part is judged on:
    "eval" (other sizes, batch 1, T = 1, T < n_ctx), "causal" (the future perturbed),
    "dropout_eval"/"dropout_train", and for a language model "no_targets" and
    "causal_no_targets" (the same without targets; "eval" and "causal" then have targets)
    and "train" (an "eval" case in train mode: the loss's gradient as training takes it).
    """

    name: str
    points: float
    cases: tuple


@dataclasses.dataclass(frozen=True)
class Task:
    """One graded task: a class whose ``forward`` the student writes."""

    key: str                 # also the CSV column and the grade id prefix
    cls: str                 # class name in the notebook
    notebook: str            # notebook name without .ipynb
    points: int
    depends_on: tuple = ()   # course classes its __init__ builds (stand-ins when graded)
    dropout: bool = False    # its own forward applies dropout
    causal: bool = False     # its output must not see future tokens
    returns: str = "return out"  # the release's line after the stub ("" if none)
    parts: tuple = ()        # partial credit: Part(name, points, case kinds); () = all or nothing
    language_model: bool = False  # forward(idx, targets=None) -> (logits, loss), has generate

    @property
    def solution_id(self):
        return self.key + "_solution"

    @property
    def tests_id(self):
        return self.key + "_tests"


TASKS = (
    Task("head", "Head", "01_head", 2, (), dropout=True, causal=True,
         parts=(Part("forward", 1.5, ("eval", "causal")), Part("dropout", 0.5, ("dropout_eval", "dropout_train")))),
    Task("multihead", "MultiHeadAttention", "02_multihead_attention", 1, ("Head",),
         dropout=True, causal=True),
    Task("feedforward", "FeedFoward", "03_feedforward", 1, (), dropout=True, returns=""),
    Task("block", "Block", "04_block", 2, ("MultiHeadAttention", "FeedFoward"), causal=True,
         returns="return x"),
    Task("gpt_model", "GPTModel", "05_gpt_model", 4, ("Block",), causal=True,
         returns="return logits, loss", language_model=True,
         # logits with targets; the loss; without targets (B, T, V) logits, loss None and generate
         parts=(Part("forward", 2.0, ("eval", "causal")), Part("loss", 1.0, ("eval", "train")),
                Part("no_targets", 1.0, ("no_targets", "causal_no_targets")))),
)
TASK = {task.key: task for task in TASKS}
TASK_KEYS = tuple(TASK)
TOTAL_POINTS = sum(task.points for task in TASKS)
TASK_OF_GRADE_ID = {**{t.solution_id: t for t in TASKS}, **{t.tests_id: t for t in TASKS}}
TASK_OF_NOTEBOOK = {task.notebook: task for task in TASKS}

# Every notebook of the assignment, in order; the graded ones are TASKS' notebooks.
NOTEBOOKS = ("00_data", "01_head", "02_multihead_attention", "03_feedforward",
             "04_block", "05_gpt_model", "06_training")
GRADED_NOTEBOOKS = tuple(task.notebook for task in TASKS)
# The same set as a glob, for nbgrader's notebook_id (which takes one pattern).
GRADED_GLOB = "0[" + "".join(name[1] for name in GRADED_NOTEBOOKS) + "]_*"
assert [n for n in NOTEBOOKS if fnmatch.fnmatch(n, GRADED_GLOB)] == list(GRADED_NOTEBOOKS)
CSV_COLUMNS = ("student_id", *TASK_KEYS, "total", "status")

# What the release folder holds besides what students save in it: the student kit.
KIT_SKIP = frozenset({".ipynb_checkpoints", "__pycache__"})


def kit_files(release=RELEASE):
    """Paths (relative to ``release``) of the files that make up the student kit, sorted."""
    return sorted(p.relative_to(release) for p in release.rglob("*")
                  if p.is_file() and not KIT_SKIP & set(p.relative_to(release).parts))
