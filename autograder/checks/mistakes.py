"""Known mistakes, each a wrong ``forward`` and the Russian words that name it.

The words come from ``diagnosis.MESSAGES`` (the one place they are written).

The grader runs these on the same inputs and weights as the student's code;
a student's output that matches one of them names the mistake exactly.
"""
import torch
from torch.nn import functional as F

from ..diagnosis import MESSAGES

# ----------------------------------------------------------------- Head


def _scores(self, x, scale=True, swap=False, size=None):
    k, q = self.key(x), self.query(x)
    if swap:
        k, q = q, k
    wei = q @ k.transpose(-2, -1)
    if scale:
        wei = wei * (size or self.head_size) ** -0.5
    return wei


def _finish(self, wei, x, dim=-1, value=None):
    wei = F.softmax(wei, dim=dim)
    wei = self.dropout(wei)
    return wei @ (value if value is not None else self.value(x))


def _mask(self, wei, T, fill=float('-inf')):
    return wei.masked_fill(self.tril[:T, :T] == 0, fill)


def head_no_mask(self, x):
    return _finish(self, _scores(self, x), x)


def head_inverted_mask(self, x):
    T = x.shape[1]
    wei = _scores(self, x).masked_fill(self.tril[:T, :T] == 1, float('-inf'))
    return _finish(self, wei, x).nan_to_num(0.0)


def head_mask_with_zero(self, x):
    return _finish(self, _mask(self, _scores(self, x), x.shape[1], 0.0), x)


def head_mask_after_softmax(self, x):
    T = x.shape[1]
    wei = F.softmax(_scores(self, x), dim=-1)
    wei = _mask(self, wei, T, 0.0)
    return self.dropout(wei) @ self.value(x)


def head_no_scale(self, x):
    return _finish(self, _mask(self, _scores(self, x, scale=False), x.shape[1]), x)


def head_scale_n_embd(self, x):
    return _finish(self, _mask(self, _scores(self, x, size=self.n_embd), x.shape[1]), x)


def head_scale_multiplied(self, x):
    wei = _scores(self, x, scale=False) * self.head_size ** 0.5
    return _finish(self, _mask(self, wei, x.shape[1]), x)


def head_softmax_wrong_dim(self, x):
    return _finish(self, _mask(self, _scores(self, x), x.shape[1]), x, dim=-2).nan_to_num(0.0)


def head_q_k_swapped(self, x):
    return _finish(self, _mask(self, _scores(self, x, swap=True), x.shape[1]), x)


def head_value_is_key(self, x):
    wei = _mask(self, _scores(self, x), x.shape[1])
    return _finish(self, wei, x, value=self.key(x))


def head_value_is_query(self, x):
    wei = _mask(self, _scores(self, x), x.shape[1])
    return _finish(self, wei, x, value=self.query(x))


def head_no_value(self, x):
    wei = _mask(self, _scores(self, x), x.shape[1])
    return _finish(self, wei, x, value=x)


def head_wei_not_applied(self, x):
    return self.value(x)


# ----------------------------------------------------- MultiHeadAttention


def mha_no_projection(self, x):
    return self.dropout(torch.cat([h(x) for h in self.heads], dim=-1))


def mha_sum_heads(self, x):
    out = sum(h(x) for h in self.heads)
    return self.dropout(self.proj(out.repeat(1, 1, len(self.heads))))


def mha_concat_wrong_dim(self, x):
    B, T, C = x.shape
    out = torch.cat([h(x) for h in self.heads], dim=1)
    return self.dropout(self.proj(out.reshape(B, T, C)))


def mha_stack_wrong_order(self, x):
    B, T, C = x.shape
    out = torch.stack([h(x) for h in self.heads], dim=-1).reshape(B, T, C)
    return self.dropout(self.proj(out))


def mha_only_first_head(self, x):
    out = torch.cat([self.heads[0](x)] * len(self.heads), dim=-1)
    return self.dropout(self.proj(out))


def mha_residual_inside(self, x):
    return x + self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


# ------------------------------------------------------------- FeedFoward


def ff_no_relu(self, x):
    lin1, _, lin2, drop = self.net
    return drop(lin2(lin1(x)))


def ff_extra_residual(self, x):
    return x + self.net(x)


def ff_skip_second_linear(self, x):
    lin1, relu, _, drop = self.net
    return drop(relu(lin1(x)))[..., : x.shape[-1]]


def ff_relu_at_end(self, x):
    return F.relu(self.net(x))


def ff_identity(self, x):
    return x


# ------------------------------------------------------------------ Block


def block_pre_norm(self, x):
    x = x + self.sa(self.ln1(x))
    return x + self.ffwd(self.ln2(x))


def block_no_residual(self, x):
    x = self.ln1(self.sa(x))
    return self.ln2(self.ffwd(x))


def block_no_sa_residual(self, x):
    x = self.ln1(self.sa(x))
    return self.ln2(x + self.ffwd(x))


def block_no_ffwd_residual(self, x):
    x = self.ln1(x + self.sa(x))
    return self.ln2(self.ffwd(x))


def block_same_layernorm(self, x):
    x = self.ln1(x + self.sa(x))
    return self.ln1(x + self.ffwd(x))


def block_no_layernorm(self, x):
    x = x + self.sa(x)
    return x + self.ffwd(x)


def block_residual_from_input(self, x):
    h = self.ln1(x + self.sa(x))
    return self.ln2(x + self.ffwd(h))


def block_ffwd_first(self, x):
    x = self.ln1(x + self.ffwd(x))
    return self.ln2(x + self.sa(x))


def block_parallel(self, x):
    return self.ln2(self.ln1(x + self.sa(x)) + self.ffwd(x))


# --------------------------------------------------------------- GPTModel


def _body(self, idx, pos=True, final_ln=True):
    B, T = idx.shape
    x = self.token_embedding_table(idx)
    if pos:
        x = x + self.position_embedding_table(torch.arange(T, device=idx.device))
    x = self.blocks(x)
    if final_ln:
        x = self.ln_f(x)
    return self.lm_head(x)


def _with_loss(logits, targets, loss_fn):
    if targets is None:
        return logits, None
    B, T, C = logits.shape
    return logits.view(B * T, C), loss_fn(logits.view(B * T, C), targets.view(B * T))


def gpt_no_positional(self, idx, targets=None):
    return _with_loss(_body(self, idx, pos=False), targets, F.cross_entropy)


def gpt_no_final_layernorm(self, idx, targets=None):
    return _with_loss(_body(self, idx, final_ln=False), targets, F.cross_entropy)


def gpt_softmax_before_loss(self, idx, targets=None):
    return _with_loss(_body(self, idx), targets,
                      lambda lg, t: F.cross_entropy(F.softmax(lg, dim=-1), t))


def gpt_sum_reduction(self, idx, targets=None):
    return _with_loss(_body(self, idx), targets,
                      lambda lg, t: F.cross_entropy(lg, t, reduction='sum'))


def gpt_nll_on_logits(self, idx, targets=None):
    return _with_loss(_body(self, idx), targets, F.nll_loss)


def gpt_shifted_targets(self, idx, targets=None):
    logits = _body(self, idx)
    if targets is None:
        return logits, None
    B, T, C = logits.shape
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, C), targets[:, 1:].reshape(-1))
    return logits.view(B * T, C), loss


def gpt_mse_loss(self, idx, targets=None):
    def mse(lg, t):
        return F.mse_loss(lg, F.one_hot(t, lg.shape[-1]).to(lg.dtype))
    return _with_loss(_body(self, idx), targets, mse)


def gpt_positions_n_ctx(self, idx, targets=None):
    B, T = idx.shape
    x = self.token_embedding_table(idx)
    x = x + self.position_embedding_table(torch.arange(self.n_ctx, device=idx.device))[:T].flip(0)
    x = self.ln_f(self.blocks(x))
    return _with_loss(self.lm_head(x), targets, F.cross_entropy)


# key -> variant forward, per task, tried in this order; the Russian words are MESSAGES'.
VARIANTS = {
    "head": {
        "no_mask": head_no_mask,
        "inverted_mask": head_inverted_mask,
        "mask_with_zero": head_mask_with_zero,
        "mask_after_softmax": head_mask_after_softmax,
        "no_scale": head_no_scale,
        "scale_n_embd": head_scale_n_embd,
        "scale_multiplied": head_scale_multiplied,
        "softmax_wrong_dim": head_softmax_wrong_dim,
        "q_k_swapped": head_q_k_swapped,
        "value_is_key": head_value_is_key,
        "value_is_query": head_value_is_query,
        "no_value_projection": head_no_value,
        "weights_not_applied": head_wei_not_applied,
    },
    "multihead": {
        "no_projection": mha_no_projection,
        "summed_heads": mha_sum_heads,
        "concat_wrong_dim": mha_concat_wrong_dim,
        "interleaved_heads": mha_stack_wrong_order,
        "one_head_repeated": mha_only_first_head,
        "extra_residual": mha_residual_inside,
    },
    "feedforward": {
        "no_relu": ff_no_relu,
        "extra_residual": ff_extra_residual,
        "no_second_linear": ff_skip_second_linear,
        "relu_at_end": ff_relu_at_end,
        "identity": ff_identity,
    },
    "block": {
        "pre_norm": block_pre_norm,
        "no_residual": block_no_residual,
        "no_sa_residual": block_no_sa_residual,
        "no_ffwd_residual": block_no_ffwd_residual,
        "same_layernorm": block_same_layernorm,
        "no_layernorm": block_no_layernorm,
        "residual_from_input": block_residual_from_input,
        "ffwd_first": block_ffwd_first,
        "parallel_branches": block_parallel,
    },
    "gpt_model": {
        "no_positional": gpt_no_positional,
        "positions_wrong": gpt_positions_n_ctx,
        "no_final_layernorm": gpt_no_final_layernorm,
        "softmax_before_loss": gpt_softmax_before_loss,
        "sum_reduction": gpt_sum_reduction,
        "nll_on_logits": gpt_nll_on_logits,
        "shifted_targets": gpt_shifted_targets,
        "mse_loss": gpt_mse_loss,
    },
}
# key -> (Russian message, variant forward), per task, tried in this order.
MISTAKES = {task: {key: (MESSAGES[task][key], forward) for key, forward in table.items()}
            for task, table in VARIANTS.items()}
