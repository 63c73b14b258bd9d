"""Картинки курса: веса внимания ваших голов как тепловые карты.

* ``attention_weights(model, x)`` — веса внимания, которые посчитал ВАШ
  ``Head.forward``: они перехватываются на входе ``self.dropout`` каждой
  головы (туда forward подаёт веса после softmax), так что ничего не
  вычисляется заново.
* ``show_heatmaps(...)`` — сетка тепловых карт (как ``show_heatmaps`` в d2l.ai).

Runs in the student's kernel: torch and matplotlib.
"""
import torch


def attention_weights(model, x):
    """{name: weights (B, T, T)} of every Head inside ``model`` (or of ``model`` itself) on input ``x``.

    ``x`` is what ``model`` takes: embeddings (B, T, n_embd) for a Head, token ids (B, T) for GPTModel.
    """
    heads = [(name or "head", module) for name, module in model.named_modules()
             if type(module).__name__ == "Head" and isinstance(getattr(module, "dropout", None), torch.nn.Module)]
    if not heads:
        raise ValueError("в модели нет голов внимания Head с атрибутом self.dropout")
    captured, hooks = {}, []
    for name, head in heads:
        def keep(module, inputs, output, name=name):
            captured[name] = inputs[0].detach().clone()
        hooks.append(head.dropout.register_forward_hook(keep))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    missing = [name for name, _ in heads if name not in captured]
    if missing:
        raise ValueError("веса внимания не найдены: в Head.forward self.dropout должен применяться "
                         "к весам внимания wei после softmax")
    return {name: captured[name] for name, _ in heads}


def show_heatmaps(matrices, titles=None, labels=None, ncols=4, size=2.6, suptitle=None, cmap="Reds"):
    """Draw square matrices (T, T) side by side; ``labels``: the T tokens along both axes."""
    import matplotlib.pyplot as plt

    matrices = [m.detach().cpu().float() if torch.is_tensor(m) else torch.as_tensor(m) for m in matrices]
    n = len(matrices)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.8, size * nrows + 0.4), squeeze=False)
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= n:
            ax.axis("off")
            continue
        image = ax.imshow(matrices[index].numpy(), cmap=cmap, vmin=0.0, vmax=1.0)
        if titles is not None:
            ax.set_title(titles[index], fontsize=9)
        if labels is not None:   # tokens along the axes of the outer plots only
            ticks = list(range(len(labels)))
            shown = [repr(c)[1:-1] if c in "\n\t " else c for c in labels]
            ax.set_xticks(ticks, shown if index + ncols >= n else [""] * len(ticks), fontsize=7)
            ax.set_yticks(ticks, shown if index % ncols == 0 else [""] * len(ticks), fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="вес внимания")
    if suptitle:
        fig.suptitle(suptitle)
    plt.show()
