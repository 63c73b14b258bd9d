"""Reference implementation of the course model (the seed's classes, solved).

The ``__init__`` methods are the seed's given code; the ``forward`` methods
are the reference solutions. This module never enters a student's kernel.
"""
import functools
import os
import pathlib

import torch
import torch.nn as nn
from torch.nn import functional as F

from .. import kit
from ..course import TASK

# The course classes set their config attributes as the kit's harness does.
_Configured = kit.load("gpt_harness").Configured


class Head(_Configured):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.query = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.value = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.register_buffer('tril', torch.tril(torch.ones(self.n_ctx, self.n_ctx)))
        self.dropout = nn.Dropout(self.dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)
        out = wei @ v
        return out


class MultiHeadAttention(_Configured):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heads = nn.ModuleList([Head(**kwargs) for _ in range(self.n_head)])
        self.proj = nn.Linear(self.n_embd, self.n_embd)
        self.dropout = nn.Dropout(self.dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        out = self.dropout(self.proj(out))
        return out


class FeedFoward(_Configured):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Sequential(
            nn.Linear(self.n_embd, 4 * self.n_embd),
            nn.ReLU(),
            nn.Linear(4 * self.n_embd, self.n_embd),
            nn.Dropout(self.dropout),
        )

    def forward(self, x):
        return self.net(x)


class Block(_Configured):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sa = MultiHeadAttention(**kwargs)
        self.ffwd = FeedFoward(**kwargs)
        self.ln1 = nn.LayerNorm(self.n_embd)
        self.ln2 = nn.LayerNorm(self.n_embd)

    def forward(self, x):
        x = self.ln1(x + self.sa(x))
        x = self.ln2(x + self.ffwd(x))
        return x


class GPTModel(_Configured):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding_table = nn.Embedding(self.vocab_size, self.n_embd)
        self.position_embedding_table = nn.Embedding(self.n_ctx, self.n_embd)
        self.blocks = nn.Sequential(*[Block(**kwargs) for _ in range(self.n_layer)])
        self.ln_f = nn.LayerNorm(self.n_embd)
        self.lm_head = nn.Linear(self.n_embd, self.vocab_size)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))
        x = tok_emb + pos_emb
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)
        if targets is None:
            loss = None
        else:
            B, T, C = logits.shape
            logits = logits.view(B * T, C)
            targets = targets.view(B * T)
            loss = F.cross_entropy(logits, targets)
        return logits, loss

    def generate(self, idx, max_new_tokens):
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.n_ctx:]
            logits, loss = self(idx_cond)
            logits = logits[:, -1, :]
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


CLASSES = {
    "Head": Head,
    "MultiHeadAttention": MultiHeadAttention,
    "FeedFoward": FeedFoward,
    "Block": Block,
    "GPTModel": GPTModel,
}


# ------------------------------------------------- running the reference

def build_reference(task, config, own_deps=False):
    """The reference class of ``task``, built as the probe builds a student's."""
    from ..kernel import probe
    spec = TASK[task]
    return probe.build(CLASSES[spec.cls], spec.depends_on, config, stand_ins=not own_deps)


def run_reference(task, cases, forward=None):
    """Outputs of the reference (or of a variant ``forward``) on ``cases``."""
    from ..kernel import probe
    spec = TASK[task]
    cls = CLASSES[spec.cls]
    if forward is not None:
        cls = type(cls.__name__, (cls,), {"forward": forward})
    return probe.run_cases(spec.cls, spec.depends_on, {spec.cls: cls}, cases)


def cache_key(seed, grader_fingerprint):
    """The reference cache's key of a run: the course secret's case seed and the grader."""
    return f"{seed}-{grader_fingerprint[:16]}"


@functools.lru_cache(maxsize=32)
def _read_outputs(path):
    """A reference output file, read once per process: its name holds the run's key, so it never
    changes, and scoring only reads the outputs (tests/test_scoring.py). A worker grading many
    students unpickles each file once (about 15 ms a task each time before)."""
    return torch.load(path, weights_only=True)


def cached_outputs(task, cases, cache_dir, key):
    """``run_reference(task, cases)``, cached in ``cache_dir`` under ``key``.

    ``key`` must change whenever the cases or the grader change (``cache_key``).
    """
    if not cache_dir:
        return run_reference(task, cases)
    path = pathlib.Path(cache_dir) / f"{task}-{key}{'-own' if cases and cases[0]['own_deps'] else ''}.pt"
    if path.is_file():
        return _read_outputs(str(path))
    want = run_reference(task, cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(want, partial)
    os.replace(partial, path)
    return want
