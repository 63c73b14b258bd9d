"""Known mistakes, each a wrong ``forward`` and the Russian words that name it.

The grader runs these on the same inputs and weights as the student's code;
a student's output that matches one of them names the mistake exactly.
"""
import torch
from torch.nn import functional as F

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


# key -> (Russian message, variant forward), per task, tried in this order.
MISTAKES = {
    "head": {
        "no_mask": ("маска не применена: каждый токен видит будущие токены", head_no_mask),
        "inverted_mask": ("маска перевёрнута: закрыто прошлое, а не будущее (используйте tril == 0)", head_inverted_mask),
        "mask_with_zero": ("маскирование нулём вместо -inf: после softmax будущие токены всё равно получают вес", head_mask_with_zero),
        "mask_after_softmax": ("маска применена после softmax: веса строк больше не суммируются в 1", head_mask_after_softmax),
        "no_scale": ("нет масштабирования: оценки внимания нужно умножить на head_size ** -0.5", head_no_scale),
        "scale_n_embd": ("неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)", head_scale_n_embd),
        "scale_multiplied": ("масштаб применён наоборот: нужно делить на sqrt(head_size), а не умножать", head_scale_multiplied),
        "softmax_wrong_dim": ("softmax по неверной оси: нормируйте по последней оси (dim=-1)", head_softmax_wrong_dim),
        "q_k_swapped": ("перепутаны запросы и ключи: оценки внимания — это q @ k.transpose(-2, -1)", head_q_k_swapped),
        "value_is_key": ("взвешиваются ключи вместо значений: умножайте веса на v = self.value(x)", head_value_is_key),
        "value_is_query": ("взвешиваются запросы вместо значений: умножайте веса на v = self.value(x)", head_value_is_query),
        "no_value_projection": ("веса умножаются на x, а не на v = self.value(x)", head_no_value),
        "weights_not_applied": ("веса внимания не применены: выход должен быть wei @ v", head_wei_not_applied),
    },
    "multihead": {
        "no_projection": ("нет проекции: после конкатенации пропустите результат через self.proj", mha_no_projection),
        "summed_heads": ("головы сложены, а не сконкатенированы по последней оси", mha_sum_heads),
        "concat_wrong_dim": ("конкатенация по неверной оси: объединяйте головы по последней оси (dim=-1)", mha_concat_wrong_dim),
        "interleaved_heads": ("головы объединены в неверном порядке: используйте torch.cat(..., dim=-1)", mha_stack_wrong_order),
        "one_head_repeated": ("используется только одна голова: пропустите x через каждую из self.heads", mha_only_first_head),
        "extra_residual": ("лишнее residual-соединение: x + ... делается в Block, а не в MultiHeadAttention", mha_residual_inside),
    },
    "feedforward": {
        "no_relu": ("пропущена ReLU: используйте self.net целиком", ff_no_relu),
        "extra_residual": ("лишнее residual-соединение: x + ... делается в Block, а не в FeedFoward", ff_extra_residual),
        "no_second_linear": ("пропущен второй линейный слой", ff_skip_second_linear),
        "relu_at_end": ("лишняя ReLU на выходе", ff_relu_at_end),
        "identity": ("forward возвращает вход без изменений", ff_identity),
    },
    "block": {
        "pre_norm": ("pre-norm вместо требуемого post-norm: нужно x = ln1(x + sa(x)), затем ln2(x + ffwd(x))", block_pre_norm),
        "no_residual": ("нет residual-соединений: прибавляйте вход к выходу sa и ffwd", block_no_residual),
        "no_sa_residual": ("нет residual-соединения вокруг self.sa", block_no_sa_residual),
        "no_ffwd_residual": ("нет residual-соединения вокруг self.ffwd", block_no_ffwd_residual),
        "same_layernorm": ("один и тот же LayerNorm использован дважды: после ffwd нужен self.ln2", block_same_layernorm),
        "no_layernorm": ("LayerNorm не применён", block_no_layernorm),
        "residual_from_input": ("второе residual-соединение берёт исходный вход, а не результат после внимания", block_residual_from_input),
        "ffwd_first": ("перепутан порядок: сначала внимание (sa), потом ffwd", block_ffwd_first),
        "parallel_branches": ("ffwd применён к исходному входу, а не к результату внимания", block_parallel),
    },
    "gpt_model": {
        "no_positional": ("нет позиционных эмбеддингов: прибавьте position_embedding_table(torch.arange(T))", gpt_no_positional),
        "positions_wrong": ("позиционные эмбеддинги взяты не для позиций 0..T-1", gpt_positions_n_ctx),
        "no_final_layernorm": ("не применён финальный LayerNorm self.ln_f", gpt_no_final_layernorm),
        "softmax_before_loss": ("softmax перед cross_entropy: F.cross_entropy сам применяет log_softmax к логитам", gpt_softmax_before_loss),
        "sum_reduction": ("loss суммируется, а не усредняется (reduction='sum')", gpt_sum_reduction),
        "nll_on_logits": ("nll_loss на сырых логитах: нужен F.cross_entropy (или log_softmax перед nll_loss)", gpt_nll_on_logits),
        "shifted_targets": ("цели сдвинуты ещё раз: targets уже сдвинуты в get_batch", gpt_shifted_targets),
        "mse_loss": ("неверная функция потерь: нужна кросс-энтропия", gpt_mse_loss),
    },
}
