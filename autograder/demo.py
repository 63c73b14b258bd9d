"""``make demo``: an example class (reference, untouched release, typical mistakes)."""
import pathlib
import shutil

import nbformat

from .course import NOTEBOOKS, RELEASE, SOURCE, TASK_OF_NOTEBOOK, TASKS
from .notebooks import paste_body, read, solution_body
MISTAKES = {
    "student_no_scale": ("head", """
        k, q, v = self.key(x), self.query(x), self.value(x)
        T = x.shape[1]
        wei = (q @ k.transpose(-2, -1)).masked_fill(self.tril[:T, :T] == 0, float('-inf'))
        out = self.dropout(F.softmax(wei, dim=-1)) @ v
    """),
    "student_pre_norm": ("block", """
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
    """),
    "student_softmax_loss": ("gpt_model", """
        B, T = idx.shape
        x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T))
        logits = self.lm_head(self.ln_f(self.blocks(x)))
        loss = None
        if targets is not None:
            probs = F.softmax(logits, dim=-1)
            loss = F.cross_entropy(probs.view(B * T, -1), targets.view(B * T))
    """),
    "student_no_projection": ("multihead", """
        out = self.dropout(torch.cat([h(x) for h in self.heads], dim=-1))
    """),
}


def build_class(folder):
    """Write the example class into ``folder``; return it."""
    folder = pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    reference = {spec.key: solution_body(read(SOURCE / f"{spec.notebook}.ipynb"), spec.key)
                 for spec in TASKS}
    students = {"student_reference": {}, "student_untouched": None}
    students.update({sid: {task: body} for sid, (task, body) in MISTAKES.items()})
    for sid, changes in students.items():
        (folder / sid).mkdir(parents=True)
        for name in NOTEBOOKS:
            nb = read(RELEASE / f"{name}.ipynb")
            spec = TASK_OF_NOTEBOOK.get(name)
            if spec and changes is not None:
                paste_body(nb, spec.key, changes.get(spec.key, reference[spec.key]))
            nbformat.write(nb, str(folder / sid / f"{name}.ipynb"))
    return folder
