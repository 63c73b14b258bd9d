"""Student-like forward bodies for the grader's mutation tests.

Each body is code as a student would write it inside ``forward`` (no
indentation); ``autograder.notebooks.paste_body`` puts it between the stub
markers of a release notebook. The lines the release keeps after the stub
still run: Head and MultiHeadAttention end with ``return out``, Block with
``return x``, GPTModel with ``return logits, loss``; FeedFoward has none, so
its bodies return themselves.

``ALTERNATIVES``: key -> (task, body), correct solutions written differently
from the reference; each must get full points.

``BUGS``: key -> (task, body, mistake), wrong solutions; each must lose points
on its own task, and the grader and the diagnosis (``gpt_selfcheck.diagnose``)
must name it with ``mistake``: one key of ``gpt_selfcheck.MESSAGES[task]``
(a str), or a tuple of keys for a compound bug, every one of which must be
named (``expected_keys`` turns either into a tuple).
"""

# ------------------------------------------------------------ alternatives

ALTERNATIVES = {
    # Head
    "head_einsum_sqrt": ("head", """
import math
B, T, C = x.shape
k = self.key(x)
q = self.query(x)
v = self.value(x)
wei = torch.einsum('btd,bsd->bts', q, k) / math.sqrt(self.head_size)
wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
wei = F.softmax(wei, dim=-1)
wei = self.dropout(wei)
out = torch.einsum('bts,bsd->btd', wei, v)
"""),
    "head_bmm_minus_1e9": ("head", """
B, T, C = x.shape
k = self.key(x)
q = self.query(x)
wei = torch.bmm(q, k.transpose(1, 2)) * (1.0 / self.head_size ** 0.5)
wei = wei.masked_fill(self.tril[:T, :T] == 0, -1e9)
wei = torch.softmax(wei, dim=2)
wei = self.dropout(wei)
out = torch.bmm(wei, self.value(x))
"""),
    "head_where_local_mask": ("head", """
B, T, C = x.shape
q, k, v = self.query(x), self.key(x), self.value(x)
wei = torch.matmul(q, k.transpose(-2, -1)) / (k.shape[-1] ** 0.5)
mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
wei = torch.where(mask, wei, torch.tensor(float('-inf'), device=x.device))
wei = wei.softmax(dim=-1)
out = self.dropout(wei) @ v
"""),
    "head_triu_mask": ("head", """
T = x.shape[1]
k = self.key(x)
q = self.query(x)
wei = q @ k.mT / self.head_size ** 0.5
future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=1)
wei = wei.masked_fill(future, float('-inf'))
wei = self.dropout(F.softmax(wei, dim=-1))
out = wei @ self.value(x)
"""),
    "head_sdpa": ("head", """
k = self.key(x)
q = self.query(x)
v = self.value(x)
out = F.scaled_dot_product_attention(
    q, k, v, is_causal=True, dropout_p=self.dropout.p if self.training else 0.0)
"""),
    # MultiHeadAttention
    "mha_stack_reshape": ("multihead", """
B, T, C = x.shape
out = torch.stack([h(x) for h in self.heads], dim=2)  # (B, T, n_head, head_size)
out = out.reshape(B, T, -1)
out = self.dropout(self.proj(out))
"""),
    "mha_loop_cat_dim2": ("multihead", """
outs = []
for head in self.heads:
    outs.append(head(x))
out = torch.cat(outs, dim=2)
out = self.proj(out)
out = self.dropout(out)
"""),
    "mha_functional_linear": ("multihead", """
out = torch.cat(tuple(h(x) for h in self.heads), -1)
out = self.dropout(F.linear(out, self.proj.weight, self.proj.bias))
"""),
    # all heads at once from the heads' own weights: right with the real Head only
    "mha_batched_from_head_weights": ("multihead", """
B, T, C = x.shape
q = torch.stack([h.query(x) for h in self.heads], dim=1)  # (B, n_head, T, head_size)
k = torch.stack([h.key(x) for h in self.heads], dim=1)
v = torch.stack([h.value(x) for h in self.heads], dim=1)
wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
wei = wei.masked_fill(self.heads[0].tril[:T, :T] == 0, float('-inf'))
wei = self.heads[0].dropout(F.softmax(wei, dim=-1))
out = (wei @ v).transpose(1, 2).reshape(B, T, C)
out = self.dropout(self.proj(out))
"""),
    # FeedFoward
    "ff_explicit_layers": ("feedforward", """
x = self.net[0](x)
x = self.net[1](x)
x = self.net[2](x)
x = self.net[3](x)
return x
"""),
    "ff_loop": ("feedforward", """
for layer in self.net:
    x = layer(x)
return x
"""),
    "ff_functional_relu": ("feedforward", """
h = F.relu(self.net[0](x))
return self.net[3](self.net[2](h))
"""),
    # Block
    "block_named_steps": ("block", """
attn = self.sa(x)
x = self.ln1(attn + x)
ff = self.ffwd(x)
x = self.ln2(ff + x)
"""),
    "block_functional_layer_norm": ("block", """
h = F.layer_norm(x + self.sa(x), (self.n_embd,), self.ln1.weight, self.ln1.bias, self.ln1.eps)
x = F.layer_norm(h + self.ffwd(h), (self.n_embd,), self.ln2.weight, self.ln2.bias, self.ln2.eps)
"""),
    "block_calls_ffwd_net": ("block", """
x = self.ln1(x + self.sa(x))
x = self.ln2(x + self.ffwd.net(x))
"""),
    # one expression, each sub-module called twice for the same value: odd, but the task's result
    "block_sublayers_recomputed": ("block", """
return self.ln2(self.ln1(x + self.sa(x)) + self.ffwd(self.ln1(x + self.sa(x))))
"""),
    # GPTModel
    "gpt_loop_blocks_not_flat": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
for block in self.blocks:
    x = block(x)
logits = self.lm_head(self.ln_f(x))
loss = None
if targets is not None:
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
"""),
    "gpt_transpose_cross_entropy": ("gpt_model", """
T = idx.size(1)
pos = torch.arange(0, T, dtype=torch.long, device=idx.device).unsqueeze(0)
x = self.token_embedding_table(idx) + self.position_embedding_table(pos)
x = self.ln_f(self.blocks(x))
logits = self.lm_head(x)
if targets is None:
    loss = None
else:
    loss = F.cross_entropy(logits.transpose(1, 2), targets)
"""),
    "gpt_log_softmax_nll": ("gpt_model", """
B, T = idx.shape
tok_emb = self.token_embedding_table(idx)
pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(tok_emb + pos_emb))
logits = self.lm_head(x)
loss = None
if targets is not None:
    logits = logits.reshape(B * T, -1)
    loss = F.nll_loss(F.log_softmax(logits, dim=-1), targets.reshape(-1))
"""),
    "gpt_gathered_log_probabilities": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(self.ln_f(self.blocks(x)))
if targets is None:
    loss = None
else:
    log_probs = F.log_softmax(logits, dim=-1)                     # (B, T, V)
    loss = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()    # the cross-entropy by hand
"""),
    "gpt_positions_sliced_from_table": ("gpt_model", """
B, T = idx.shape
pos_emb = self.position_embedding_table.weight[:T]
x = self.token_embedding_table(idx) + pos_emb
x = self.blocks(x)
x = self.ln_f(x)
logits = self.lm_head(x)
if targets is not None:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.view(B * T))
else:
    loss = None
"""),
    # parts applied as functions of their own weights: nothing to name (the kit cannot
    # always follow them, and then says nothing)
    "gpt_functional_lm_head": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(x))
logits = F.linear(x, self.lm_head.weight, self.lm_head.bias)
loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
"""),
    "ff_functional_layers": ("feedforward", """
h = F.relu(F.linear(x, self.net[0].weight, self.net[0].bias))
return self.net[3](F.linear(h, self.net[2].weight, self.net[2].bias))
"""),
    # a mask filling a finite number so low that the future's weights vanish (not mask_finite)
    "head_mask_fill_minus_20": ("head", """
B, T, C = x.shape
q, k, v = self.query(x), self.key(x), self.value(x)
wei = (q @ k.transpose(-2, -1) * self.head_size ** -0.5).masked_fill(self.tril[:T, :T] == 0, -20.0)
out = self.dropout(F.softmax(wei, dim=-1)) @ v
"""),
}


# -------------------------------------------------------------------- bugs

_HEAD_START = """
B, T, C = x.shape
k = self.key(x)
q = self.query(x)
v = self.value(x)
"""
_GPT_LOGITS = """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(x))
logits = self.lm_head(x)
"""
_GPT_FLAT_LOSS = """
if targets is None:
    loss = None
else:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    targets = targets.view(B * T)
"""


def _head(*lines):
    return _HEAD_START + "\n".join(lines) + "\n"


def _gpt_loss(loss_line):
    return _GPT_LOGITS + _GPT_FLAT_LOSS + "    " + loss_line + "\n"


BUGS = {
    # Head: the named mistakes
    "head_no_mask": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = F.softmax(wei, dim=-1)",
        "out = self.dropout(wei) @ v"), "no_mask"),
    # The named variant cleans the NaN row (T = 1 and the last row are fully masked);
    # a plain inverted mask leaves NaN and is caught as future_leak (below).
    "head_inverted_mask_nan_to_num": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 1, float('-inf'))",
        "wei = self.dropout(F.softmax(wei, dim=-1))",
        "out = (wei @ v).nan_to_num(0.0)"), "inverted_mask"),
    "head_mask_with_zero": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, 0)",
        "wei = self.dropout(F.softmax(wei, dim=-1))",
        "out = wei @ v"), "mask_with_zero"),
    "head_mask_after_softmax": ("head", _head(
        "wei = F.softmax(q @ k.transpose(-2, -1) * self.head_size ** -0.5, dim=-1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)",
        "out = self.dropout(wei) @ v"), "mask_after_softmax"),
    "head_mask_with_inf_after_softmax": ("head", _head(   # softmax and the mask's line swapped
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = F.softmax(wei, dim=-1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(wei) @ v"), "mask_after_softmax"),
    "head_no_scale": ("head", _head(
        "wei = q @ k.transpose(-2, -1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "no_scale"),
    "head_scale_by_C": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * C ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "scale_n_embd"),
    "head_scale_multiplied": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** 0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "scale_multiplied"),
    "head_softmax_dim1": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=1)) @ v"), "softmax_wrong_dim"),
    "head_k_q_swapped": ("head", _head(
        "wei = k @ q.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "q_k_swapped"),
    "head_weights_times_k": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ k"), "value_is_key"),
    "head_weights_times_q": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ q"), "value_is_query"),
    # wei @ x has n_embd columns, not head_size: named by its cause, not by the shape.
    "head_weights_times_x": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ x"), "no_value_projection"),
    "head_weights_not_applied": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = self.dropout(F.softmax(wei, dim=-1))",
        "out = v"), "weights_not_applied"),
    # Head: the generic checks
    "head_not_implemented": ("head", "raise NotImplementedError()\n", "not_implemented"),
    "head_output_detached": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = (self.dropout(F.softmax(wei, dim=-1)) @ v).detach()"), "no_grad"),
    "head_tril_not_sliced": ("head", _head(  # only fails for T < n_ctx
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "mask_not_sliced"),
    "head_mask_sees_next_token": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "mask = torch.tril(torch.ones(T, T, device=x.device), diagonal=1)",
        "wei = wei.masked_fill(mask == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "future_leak"),
    "head_inverted_mask_natural": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 1, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "inverted_mask"),
    "head_no_dropout": ("head", _head(  # only fails with dropout > 0
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = F.softmax(wei, dim=-1) @ v"), "no_dropout"),
    "head_dropout_on_output": ("head", _head(  # only fails with dropout > 0
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1) @ v)"), "dropout_on_output"),
    "head_dropout_always_on": ("head", _head(  # F.dropout defaults to training=True
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.dropout(F.softmax(wei, dim=-1), p=self.dropout.p)",
        "out = wei @ v"), "dropout_in_eval"),
    "head_dropout_on_scores": ("head", _head(  # dropout before softmax
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = self.dropout(wei)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = F.softmax(wei, dim=-1) @ v"), "dropout_wrong"),

    # MultiHeadAttention
    "mha_no_projection": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = self.dropout(out)
""", "no_projection"),
    # Summing heads only reaches self.proj with the width repeated back; plain
    # summing crashes in self.proj (mha_summed_heads_natural).
    "mha_summed_heads_repeated": ("multihead", """
out = sum(h(x) for h in self.heads)
out = out.repeat(1, 1, self.n_head)
out = self.dropout(self.proj(out))
""", "summed_heads"),
    "mha_cat_dim1_view": ("multihead", """
B, T, C = x.shape
out = torch.cat([h(x) for h in self.heads], dim=1).view(B, T, C)
out = self.dropout(self.proj(out))
""", "concat_wrong_dim"),
    "mha_stack_last_dim": ("multihead", """
B, T, C = x.shape
out = torch.stack([h(x) for h in self.heads], dim=-1).reshape(B, T, C)
out = self.dropout(self.proj(out))
""", "interleaved_heads"),
    "mha_first_head_only": ("multihead", """
h0 = self.heads[0](x)
out = torch.cat([h0 for _ in self.heads], dim=-1)
out = self.dropout(self.proj(out))
""", "one_head_repeated"),
    "mha_residual_inside": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = x + self.dropout(self.proj(out))
""", "extra_residual"),
    "mha_no_dropout": ("multihead", """
out = self.proj(torch.cat([h(x) for h in self.heads], dim=-1))
""", "no_dropout"),
    # crashes in self.proj: named by its cause (what self.proj got), with the error
    "mha_summed_heads_natural": ("multihead", """
out = sum(h(x) for h in self.heads)
out = self.dropout(self.proj(out))
""", "summed_heads"),

    # FeedFoward
    "ff_no_relu": ("feedforward", """
lin1, relu, lin2, drop = self.net
return drop(lin2(lin1(x)))
""", "no_relu"),
    "ff_residual": ("feedforward", "return x + self.net(x)\n", "extra_residual"),
    # Without the slice the output is 4 * n_embd wide: named by its cause too (next entry).
    "ff_skip_second_linear_sliced": ("feedforward", """
h = self.net[3](self.net[1](self.net[0](x)))
return h[..., :self.n_embd]
""", "no_second_linear"),
    "ff_skip_second_linear_natural": ("feedforward", """
return self.net[3](self.net[1](self.net[0](x)))
""", "no_second_linear"),
    "ff_relu_at_end": ("feedforward", "return torch.relu(self.net(x))\n", "relu_at_end"),
    "ff_identity": ("feedforward", "return x\n", "identity"),
    # self.net as the task says, then something more done to its output
    "ff_layer_norm_after": ("feedforward", "out = self.net(x)\nreturn F.layer_norm(out, out.shape[-1:])\n",
                            "output_changed"),
    "ff_output_doubled": ("feedforward", "return 2 * self.net(x)\n", "output_changed"),
    "ff_no_return": ("feedforward", "self.net(x)\n", "no_return"),
    "ff_no_dropout": ("feedforward", "return self.net[2](self.net[1](self.net[0](x)))\n", "no_dropout"),

    # Block
    "block_pre_norm": ("block", """
x = x + self.sa(self.ln1(x))
x = x + self.ffwd(self.ln2(x))
""", "pre_norm"),
    "block_no_residual": ("block", """
x = self.ln1(self.sa(x))
x = self.ln2(self.ffwd(x))
""", "no_residual"),
    "block_no_sa_residual": ("block", """
x = self.ln1(self.sa(x))
x = self.ln2(x + self.ffwd(x))
""", "no_sa_residual"),
    "block_no_ffwd_residual": ("block", """
x = self.ln1(x + self.sa(x))
x = self.ln2(self.ffwd(x))
""", "no_ffwd_residual"),
    "block_ln1_twice": ("block", """
x = self.ln1(x + self.sa(x))
x = self.ln1(x + self.ffwd(x))
""", "same_layernorm"),
    "block_no_layernorm": ("block", """
x = x + self.sa(x)
x = x + self.ffwd(x)
""", "no_layernorm"),
    "block_residual_from_input": ("block", """
h = self.ln1(x + self.sa(x))
x = self.ln2(x + self.ffwd(h))
""", "residual_from_input"),
    "block_ffwd_first": ("block", """
x = self.ln1(x + self.ffwd(x))
x = self.ln2(x + self.sa(x))
""", "ffwd_first"),
    "block_ffwd_first_norms_kept": ("block", """
x = self.ln2(x + self.ffwd(x))
x = self.ln1(x + self.sa(x))
""", "ffwd_first"),
    "block_parallel": ("block", """
h = self.ln1(x + self.sa(x))
x = self.ln2(h + self.ffwd(x))
""", "parallel_branches"),
    "block_sa_input_detached": ("block", """
x = self.ln1(x + self.sa(x.detach()))
x = self.ln2(x + self.ffwd(x))
""", "wrong_grad"),

    # GPTModel
    "gpt_no_positional": ("gpt_model", """
x = self.ln_f(self.blocks(self.token_embedding_table(idx)))
logits = self.lm_head(x)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "no_positional"),
    "gpt_positions_reversed": ("gpt_model", """
B, T = idx.shape
pos = torch.arange(T - 1, -1, -1, device=idx.device)
x = self.token_embedding_table(idx) + self.position_embedding_table(pos)
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "positions_wrong"),
    "gpt_positions_n_ctx": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(self.n_ctx))
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "positions_n_ctx"),  # fails for T < n_ctx
    "gpt_no_final_layernorm": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T))
logits = self.lm_head(self.blocks(x))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "no_final_layernorm"),
    "gpt_residual_around_each_block": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
for block in self.blocks:
    x = x + block(x)
logits = self.lm_head(self.ln_f(x))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "residual_around_blocks"),
    "gpt_residual_around_the_blocks_without_ln_f": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(x + self.blocks(x))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", ("residual_around_blocks", "no_final_layernorm")),
    "gpt_softmax_before_loss": ("gpt_model", _gpt_loss(
        "loss = F.cross_entropy(F.softmax(logits, dim=-1), targets)"), "softmax_before_loss"),
    "gpt_sum_reduction": ("gpt_model", _gpt_loss(
        "loss = F.cross_entropy(logits, targets, reduction='sum')"), "sum_reduction"),
    "gpt_nll_on_logits": ("gpt_model", _gpt_loss(
        "loss = F.nll_loss(logits, targets)"), "nll_on_logits"),
    # Expected names the grader does not give yet (NAMING_GAPS in the test module).
    "gpt_shifted_targets": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = None
else:
    B, T, C = logits.shape
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, C), targets[:, 1:].reshape(-1))
    logits = logits.view(B * T, C)
""", "shifted_targets"),
    "gpt_mse_loss": ("gpt_model", _gpt_loss(
        "loss = F.mse_loss(logits, F.one_hot(targets, C).float())"), "mse_loss"),
    "gpt_targets_transposed": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = None
else:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.t().reshape(-1))
""", "wrong_loss"),
    "gpt_loss_without_targets": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = torch.zeros(())
else:
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
""", "loss_without_targets"),
    "gpt_flat_logits_always": ("gpt_model", _GPT_LOGITS + """
B, T, C = logits.shape
logits = logits.view(B * T, C)
loss = None if targets is None else F.cross_entropy(logits, targets.view(B * T))
""", "flat_logits_without_targets"),
    "gpt_loss_always_none": ("gpt_model", _GPT_LOGITS + "loss = None\n", "no_loss"),
    # Expected name not given yet either: see NAMING_GAPS.
    "gpt_loss_not_reduced": ("gpt_model", _gpt_loss(
        "loss = F.cross_entropy(logits, targets, reduction='none')"), "loss_not_scalar"),
    "gpt_loss_item": ("gpt_model", _gpt_loss("loss = F.cross_entropy(logits, targets).item()"), "loss_not_tensor"),
    "gpt_returns_logits_only": ("gpt_model", _GPT_LOGITS + "return logits\n", "not_pair"),
    "gpt_logits_detached": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = None
else:
    loss = F.cross_entropy(logits.detach().view(-1, logits.shape[-1]), targets.view(-1))
""", "no_grad"),
    "gpt_not_implemented": ("gpt_model", "raise NotImplementedError()\n", "not_implemented"),
    # detached where training takes it only (for a log, say): eval mode alone shows nothing
    "gpt_loss_detached_in_training": ("gpt_model", _gpt_loss(
        "loss = F.cross_entropy(logits, targets)\n    if self.training:\n        loss = loss.detach()"), "no_grad"),
    # logits from the token embedding's weight (weight tying as written in forward): lm_head unused
    "gpt_logits_from_the_embedding_weight": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.ln_f(self.blocks(x)) @ self.token_embedding_table.weight.T
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "unused_parameter"),
    # a dropout layer made inside forward: in training mode always, so random in eval mode too
    "head_dropout_made_in_forward": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = nn.Dropout(0.1)(F.softmax(wei, dim=-1)) @ v"), ("random_in_eval", "dropout_in_eval")),
    "gpt_dropout_made_in_forward": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(nn.Dropout(0.2)(x)))
logits = self.lm_head(x)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "random_in_eval"),
    # a dropout of its own, its p a number: right in eval mode, other logits in training at dropout 0
    "gpt_dropout_of_its_own_on_embeddings": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = F.dropout(x, p=0.1, training=self.training)
x = self.ln_f(self.blocks(x))
logits = self.lm_head(x)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "train_differs"),

    # Patterns seen in real code (issue 8), one mistake each
    "head_local_mask_not_sliced": ("head", _head(  # only fails for T < n_ctx
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "mask = torch.tril(torch.ones(self.n_ctx, self.n_ctx))",
        "wei = wei.masked_fill(mask == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "mask_not_sliced"),
    "mha_proj_on_input": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = self.proj(x)
out = self.dropout(out)
""", "proj_on_input"),
    "mha_proj_twice": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = self.proj(out)
out = self.dropout(self.proj(out))
""", "proj_twice"),
    "ff_gelu": ("feedforward", """
h = F.gelu(self.net[0](x))
return self.net[3](self.net[2](h))
""", "gelu_instead_of_relu"),
    "block_norm_before_residual": ("block", """
x = self.ln1(x)
x = x + self.sa(x)
x = self.ln2(x)
x = x + self.ffwd(x)
""", "norm_before_residual"),
    "block_norm_before_residual_then_post_norm": ("block", """
x = self.ln1(x)
x = x + self.sa(x)
x = self.ln2(x + self.ffwd(x))
""", "norm_before_residual"),
    "gpt_blocks_not_applied": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(self.ln_f(x))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "blocks_not_applied"),
    "gpt_logits_last_only": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(x))
logits = self.lm_head(x[:, -1, :])
loss = None if targets is None else F.cross_entropy(logits, targets[:, -1])
""", "logits_last_only"),

    # Compound: every key must be named
    "head_k_q_swapped_scale_by_C": ("head", _head(
        "wei = k @ q.transpose(-2, -1) * C ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), ("q_k_swapped", "scale_n_embd")),
    "head_no_scale_no_dropout": ("head", _head(
        "wei = q @ k.transpose(-2, -1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = F.softmax(wei, dim=-1) @ v"), ("no_scale", "no_dropout")),
    "mha_proj_on_input_no_dropout": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = self.proj(x)
""", ("proj_on_input", "no_dropout")),
    "ff_gelu_residual": ("feedforward", """
return x + self.net[3](self.net[2](F.gelu(self.net[0](x))))
""", ("gelu_instead_of_relu", "extra_residual")),
    "block_no_residual_no_layernorm": ("block", """
x = self.sa(x)
x = self.ffwd(x)
""", ("no_residual", "no_layernorm")),
    "block_pre_norm_ln1_twice": ("block", """
x = x + self.sa(self.ln1(x))
x = x + self.ffwd(self.ln1(x))
""", ("pre_norm", "same_layernorm")),
    "gpt_no_positional_sum_reduction": ("gpt_model", """
x = self.ln_f(self.blocks(self.token_embedding_table(idx)))
logits = self.lm_head(x)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets, reduction='sum')\n",
        ("no_positional", "sum_reduction")),

    # Dropout by its signature (train mode: zeros at rate p, survivors / (1 - p), on the weights)
    "head_noise_instead_of_dropout": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.softmax(wei, dim=-1)",
        "if self.training:",
        "    wei = wei * (1 + 0.05 * torch.randn_like(wei))",
        "out = wei @ v"), "dropout_wrong"),
    "head_dropout_on_v": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = F.softmax(wei, dim=-1) @ self.dropout(v)"), "dropout_wrong"),
    "head_dropout_unscaled": ("head", _head(  # zeros at rate p, but the survivors not scaled
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.softmax(wei, dim=-1)",
        "if self.training:",
        "    wei = wei * (torch.rand_like(wei) >= self.dropout.p)",
        "out = wei @ v"), "dropout_wrong"),
    "mha_dropout_before_proj": ("multihead", """
out = self.proj(self.dropout(torch.cat([h(x) for h in self.heads], dim=-1)))
""", "dropout_wrong"),
    "mha_cat_default_dim": ("multihead", """
out = self.dropout(self.proj(torch.cat([h(x) for h in self.heads])))
""", "concat_wrong_dim"),  # fails in self.proj: named by what self.proj got
    "mha_noise_instead_of_dropout": ("multihead", """
out = self.proj(torch.cat([h(x) for h in self.heads], dim=-1))
if self.training:
    out = out + 0.01 * torch.randn_like(out)
""", "dropout_wrong"),
    "ff_dropout_without_training_flag": ("feedforward", """
h = self.net[2](self.net[1](self.net[0](x)))
return F.dropout(h, p=self.net[3].p)
""", "dropout_in_eval"),
    "ff_dropout_before_second_linear": ("feedforward", """
return self.net[2](self.net[3](self.net[1](self.net[0](x))))
""", "dropout_wrong"),

    # Causes, not effects (issue 20): the first wrong step, named by what the code does
    "gpt_embeddings_straight_to_lm_head": ("gpt_model", """
logits = self.lm_head(self.token_embedding_table(idx))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "wrong_input"),
    "gpt_positions_n_ctx_batched": ("gpt_model", """
B, T = idx.shape
pos = self.position_embedding_table(torch.arange(self.n_ctx, device=idx.device).unsqueeze(0))
x = self.ln_f(self.blocks(self.token_embedding_table(idx) + pos))
logits = self.lm_head(x)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "positions_n_ctx"),
    "gpt_position_table_for_tokens": ("gpt_model", """
B, T = idx.shape
x = self.position_embedding_table(idx) + self.token_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "positions_wrong"),
    "gpt_lm_head_bias_unused": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
x = self.ln_f(self.blocks(x))
logits = F.linear(x, self.lm_head.weight)
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "unused_parameter"),
    "head_query_from_key": ("head", """
B, T, C = x.shape
k = self.key(x)
q = self.key(x)
wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5
wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
out = self.dropout(F.softmax(wei, dim=-1)) @ self.value(x)
""", "wrong_role"),
    "head_scale_by_n_head": ("head", _head(  # right only where head_size ** 0.5 == n_head
        "wei = q @ k.transpose(-2, -1) / self.n_head",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "scale_wrong"),
    "block_layernorms_swapped": ("block", """
x = self.ln2(x + self.sa(x))
x = self.ln1(x + self.ffwd(x))
""", "layernorms_swapped"),
    "gpt_last_logits_without_targets": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    logits = logits[:, -1:, :]  # (B, 1, V): "all generate needs"
    loss = None
else:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.view(B * T))
""", "logits_last_only"),

    # Compound, one of them crashes: every mistake is still named
    "mha_summed_heads_no_dropout": ("multihead", """
out = self.proj(sum(h(x) for h in self.heads))
""", ("summed_heads", "no_dropout")),
    "gpt_positions_n_ctx_sum_reduction": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(self.n_ctx))
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets, reduction='sum')\n",
        ("positions_n_ctx", "sum_reduction")),
    "head_tril_not_sliced_no_scale": ("head", _head(
        "wei = q @ k.transpose(-2, -1)",
        "wei = wei.masked_fill(self.tril == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), ("mask_not_sliced", "no_scale")),

    # A forward that calls into the students' kit instead of computing (issue 17): the kit
    # describes the task as data and computes no output (these were the old kit's helpers).
    "block_calls_the_kit": ("block", """
import gpt_selfcheck
x = gpt_selfcheck._block_program(self, x, self.sa, self.ffwd, "post", "post", True, True, False, "ok")
""", "exception"),
    "head_calls_the_kit": ("head", _head(
        "import gpt_selfcheck",
        "wei = gpt_selfcheck._attention(q @ k.transpose(-2, -1), 'ok', -1, self.head_size ** -0.5)",
        "out = self.dropout(wei) @ v"), "exception"),

    # Head: what the attention weights show once read off the output (rows that do not sum
    # to 1, a factor after softmax, a mask one diagonal too wide, scores from the values)
    "head_no_softmax_inf_mask": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(wei) @ v"), "no_softmax"),
    "head_no_softmax_zero_mask": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)",
        "out = self.dropout(wei) @ v"), "no_softmax"),
    # another function where softmax belongs: its weights read off the output are a known
    # function of the scaled, masked scores
    "head_log_softmax": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.log_softmax(wei, dim=-1)",
        "out = self.dropout(wei) @ v"), "softmax_replaced"),
    "head_sigmoid_unscaled": ("head", _head(
        "wei = q @ k.transpose(-2, -1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(torch.sigmoid(wei)) @ v"), ("softmax_replaced", "no_scale")),
    "head_exp_not_normalised": ("head", _head(
        "wei = (q @ k.transpose(-2, -1) * self.head_size ** -0.5).masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(wei.exp()) @ v"), "softmax_replaced"),
    "head_scale_after_softmax": ("head", _head(
        "wei = q @ k.transpose(-2, -1)",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.softmax(wei, dim=-1) * self.head_size ** -0.5",
        "out = self.dropout(wei) @ v"), "scale_after_softmax"),
    "head_mask_hides_the_token_itself": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(torch.triu(torch.ones(T, T), diagonal=0) == 1, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "mask_diagonal"),
    "head_key_from_value": ("head", _head(
        "k = self.value(x)",
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "wrong_role"),
    # FeedFoward with another activation than the task's ReLU (GELU has its own words)
    "ff_tanh": ("feedforward", """
lin1, relu, lin2, drop = self.net
return drop(lin2(torch.tanh(lin1(x))))
""", "activation_not_relu"),
    "ff_silu": ("feedforward", """
return self.net[3](self.net[2](F.silu(self.net[0](x))))
""", "activation_not_relu"),
    # one head, but not the first; the blocks, each once, in the wrong order
    "mha_last_head_repeated": ("multihead", """
out = torch.cat([self.heads[-1](x)] * len(self.heads), dim=-1)
out = self.dropout(self.proj(out))
""", "one_head_repeated"),
    "gpt_blocks_reversed": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
for block in reversed(self.blocks):
    x = block(x)
logits = self.lm_head(self.ln_f(x))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "blocks_not_applied"),
    # softmax without dim (a 3-d tensor's implicit dim is 0, the batch); a mask filling a number
    "head_softmax_without_dim": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "wei = F.softmax(wei, dim=0)  # what F.softmax(wei) does, without its deprecation warning",
        "out = self.dropout(wei) @ v"), "softmax_wrong_dim"),
    "head_mask_with_minus_one": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, -1.0)",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "mask_finite"),
    "head_mask_before_scale_with_minus_five": ("head", _head(
        "wei = (q @ k.transpose(-2, -1)).masked_fill(self.tril[:T, :T] == 0, -5.0)",
        "out = self.dropout(F.softmax(wei * self.head_size ** -0.5, dim=-1)) @ v"), "mask_finite"),
    # k.T of a 3-d tensor reverses all three axes: a crash, named by the line that made it
    "head_k_dot_T": ("head", _head(
        "wei = q @ k.T * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "transpose_all_axes"),
    # a ReLU after MultiHeadAttention's projection; the final LayerNorm before the blocks
    "mha_relu_after_projection": ("multihead", """
out = torch.cat([h(x) for h in self.heads], dim=-1)
out = self.dropout(F.relu(self.proj(out)))
""", "extra_activation"),
    "mha_heads_reversed": ("multihead", """
out = torch.cat([h(x) for h in reversed(self.heads)], dim=-1)
out = self.dropout(self.proj(out))
""", "interleaved_heads"),
    "gpt_final_layernorm_before_blocks": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(self.blocks(self.ln_f(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "final_layernorm_misplaced"),
    # the tokens embedded are the targets when they are given: logits that depend on targets
    "gpt_embeds_targets": ("gpt_model", """
B, T = idx.shape
tokens = idx if targets is None else targets
x = self.token_embedding_table(tokens) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "logits_depend_on_targets"),
    "gpt_targets_added_to_input": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
if targets is not None:
    x = x + self.token_embedding_table(targets)
logits = self.lm_head(self.ln_f(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "logits_depend_on_targets"),
    # no query and key at all; self.net left out; self.net applied twice
    "head_scores_from_x": ("head", _head(
        "wei = x @ x.transpose(-2, -1) * C ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), ("scores_from_x", "scale_n_embd")),
    "ff_relu_of_the_input": ("feedforward", "return F.relu(x)\n", "net_not_applied"),
    "ff_net_twice": ("feedforward", "return self.net(self.net(x))\n", "net_twice"),
    "head_returns_the_weights": ("head", _head(
        "wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1))"), "weights_returned"),
    "gpt_returns_loss_first": ("gpt_model", _gpt_loss("loss = F.cross_entropy(logits, targets)") + "return loss, logits\n",
                               "pair_swapped"),
    "gpt_loss_only_with_targets": ("gpt_model", _GPT_LOGITS + """
if targets is not None:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.view(B * T))
""", "exception"),
    # Crashes PyTorch words in English: named as crashes, quoted in Russian (gpt_errors), never as
    # an unwritten forward (the ModuleList's NotImplementedError is PyTorch's, not the stub's)
    "mha_module_list_called": ("multihead", """
out = self.dropout(self.proj(self.heads(x)))
""", "exception"),
    "gpt_lm_head_before_final_layernorm": ("gpt_model", """
B, T = idx.shape
x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
logits = self.ln_f(self.lm_head(self.blocks(x)))
""" + _GPT_FLAT_LOSS + "    loss = F.cross_entropy(logits, targets)\n", "exception"),
    "gpt_targets_not_flattened": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = None
else:
    B, T, C = logits.shape
    loss = F.cross_entropy(logits.view(B * T, C), targets)
""", "exception"),
}

# Partial credit by part: for each part of a task with parts (course.py), a body wrong in
# that part alone. tests/test_scoring.py checks that only that part's points are lost.
BUGS.update({
    "head_size_hard_coded": ("head", _head(  # right where head_size is 16 (the notebook's)
        "wei = q @ k.transpose(-2, -1) * 16 ** -0.5",
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))",
        "out = self.dropout(F.softmax(wei, dim=-1)) @ v"), "scale_wrong"),
    "gpt_probabilities_with_targets": ("gpt_model", _GPT_LOGITS + """
if targets is None:
    loss = None
else:
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.view(B * T))
    logits = F.softmax(logits, dim=-1)
""", "probabilities_returned"),
})
WRONG_IN_ONE_PART = {("head", "forward"): "head_size_hard_coded", ("head", "dropout"): "head_no_dropout",
                     ("gpt_model", "forward"): "gpt_probabilities_with_targets",
                     ("gpt_model", "loss"): "gpt_sum_reduction",
                     ("gpt_model", "no_targets"): "gpt_last_logits_without_targets"}


def expected_keys(mistake):
    """The keys a bug's ``mistake`` names: a str is one key, a tuple several (all must be named)."""
    return (mistake,) if isinstance(mistake, str) else tuple(mistake)


# ------------------------------------------------------------ the end-to-end sample
# tests/test_grader_mutations.py grades a sample through the real command: the first
# BUG_SAMPLE bug students and ALT_SAMPLE alternative students of the packed catalogue.
BUG_SAMPLE, ALT_SAMPLE = 4, 2


def pack(table, prefix):
    """{student id: {task: key}}: the i-th entry of each task goes to student i."""
    by_task = {}
    for key, entry in table.items():  # entry: (task, body, ...)
        by_task.setdefault(entry[0], []).append(key)
    students = {}
    for task, keys in by_task.items():
        for i, key in enumerate(keys):
            students.setdefault(f"{prefix}{i:02d}", {})[task] = key
    return students


BUG_STUDENTS = dict(list(pack(BUGS, "bugs_").items())[:BUG_SAMPLE])
ALT_STUDENTS = dict(list(pack(ALTERNATIVES, "alts_").items())[:ALT_SAMPLE])
STUDENT_OF = {key: sid for table in (BUG_STUDENTS, ALT_STUDENTS) for sid, keys in table.items()
              for key in keys.values()}
