"""Рисует схему блока трансформера (post-norm) и сохраняет её в source/gpt/block.png.

Запуск (из корня репозитория):

    python tools/draw_block_diagram.py

Используется только matplotlib. Размер картинки фиксирован (800x1000 пикселей),
метаданные «Software» не записываются, чтобы PNG не менялся от запуска к запуску.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT_PATH = Path(__file__).resolve().parents[1] / "source" / "gpt" / "block.png"
WIDTH_IN, HEIGHT_IN, DPI = 8, 10, 100  # -> 800 x 1000 px

# Цвета блоков (в духе рисунка из статьи «Attention Is All You Need»)
COLOR_ATTN = "#fbd8a9"
COLOR_NORM = "#f4f3b5"
COLOR_FFWD = "#bfe3f2"
COLOR_IO = "#e8e8e8"
COLOR_EDGE = "#333333"
COLOR_RESID = "#c0392b"

# Координаты: ось x от 0 до 8, ось y от 0 до 10 (данные совпадают с дюймами)
CX = 3.35  # центр основной колонки
BOX_W = 3.6
BOX_H = 0.75
RESID_X = CX + BOX_W / 2 + 0.9  # где проходит residual-стрелка справа


def box(ax, y, text, sub, color):
    """Прямоугольник с центром (CX, y): основной текст и подпись-имя в коде."""
    patch = FancyBboxPatch(
        (CX - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor=color, edgecolor=COLOR_EDGE, linewidth=1.6, zorder=3,
    )
    ax.add_patch(patch)
    ax.text(CX, y + 0.11, text, ha="center", va="center", fontsize=13,
            fontweight="bold", zorder=4)
    ax.text(CX, y - 0.2, sub, ha="center", va="center", fontsize=10.5,
            color="#444444", zorder=4)
    return y - BOX_H / 2, y + BOX_H / 2  # низ и верх


def add_node(ax, y, r=0.26):
    """Кружок «+» (сложение с residual-веткой)."""
    ax.add_patch(Circle((CX, y), r, facecolor="white", edgecolor=COLOR_EDGE,
                        linewidth=1.6, zorder=3))
    ax.text(CX, y - 0.015, "+", ha="center", va="center", fontsize=20,
            fontweight="bold", zorder=4)
    return y - r, y + r


def arrow(ax, p0, p1, color=COLOR_EDGE, lw=1.8):
    ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=16,
                                 color=color, linewidth=lw, zorder=2,
                                 shrinkA=0, shrinkB=0))


def residual(ax, y_from, y_to, label):
    """Обходная (residual) ветка: от точки ветвления справа вниз до узла «+»."""
    ax.plot([CX, RESID_X, RESID_X], [y_from, y_from, y_to],
            color=COLOR_RESID, linewidth=2.0, zorder=2, solid_capstyle="round")
    arrow(ax, (RESID_X, y_to), (CX + 0.26, y_to), color=COLOR_RESID, lw=2.0)
    ax.add_patch(Circle((CX, y_from), 0.06, color=COLOR_RESID, zorder=4))
    ax.text(RESID_X + 0.15, (y_from + y_to) / 2, label, ha="left", va="center",
            fontsize=10.5, color=COLOR_RESID, rotation=90)


def main():
    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, WIDTH_IN)
    ax.set_ylim(0, HEIGHT_IN)
    ax.axis("off")

    ax.text(WIDTH_IN / 2, 9.62, "Блок трансформера (post-norm)",
            ha="center", va="center", fontsize=17, fontweight="bold")
    ax.text(WIDTH_IN / 2, 9.25,
            "x = ln1(x + sa(x));   x = ln2(x + ffwd(x))",
            ha="center", va="center", fontsize=12.5, family="monospace")

    # Сверху вниз: вход -> ... -> выход
    y_in, y_sa, y_add1, y_ln1 = 8.55, 7.05, 5.95, 5.05
    y_ff, y_add2, y_ln2, y_out = 3.6, 2.5, 1.6, 0.5

    in_bot, _ = box(ax, y_in, "Вход  x", "input, (B, T, C)", COLOR_IO)
    sa_bot, sa_top = box(ax, y_sa, "Masked Multi-Head Attention",
                         "маскированное внимание, sa(x)", COLOR_ATTN)
    a1_bot, a1_top = add_node(ax, y_add1)
    ln1_bot, ln1_top = box(ax, y_ln1, "LayerNorm", "ln1", COLOR_NORM)
    ff_bot, ff_top = box(ax, y_ff, "Feed Forward",
                         "полносвязная сеть, ffwd(x)", COLOR_FFWD)
    a2_bot, a2_top = add_node(ax, y_add2)
    ln2_bot, ln2_top = box(ax, y_ln2, "LayerNorm", "ln2", COLOR_NORM)
    _, out_top = box(ax, y_out, "Выход", "output, (B, T, C)", COLOR_IO)

    # Основной поток
    arrow(ax, (CX, in_bot), (CX, sa_top))
    arrow(ax, (CX, sa_bot), (CX, a1_top))
    arrow(ax, (CX, a1_bot), (CX, ln1_top))
    arrow(ax, (CX, ln1_bot), (CX, ff_top))
    arrow(ax, (CX, ff_bot), (CX, a2_top))
    arrow(ax, (CX, a2_bot), (CX, ln2_top))
    arrow(ax, (CX, ln2_bot), (CX, out_top))

    # Residual-ветки (ветвление — между предыдущим блоком и sa / ffwd)
    branch1 = (in_bot + sa_top) / 2
    branch2 = (ln1_bot + ff_top) / 2
    residual(ax, branch1, y_add1, "остаточная связь (residual)")
    residual(ax, branch2, y_add2, "остаточная связь (residual)")

    # Подписи «Add» слева от узлов сложения
    for y, txt in [(y_add1, "Add: x + sa(x)"), (y_add2, "Add: x + ffwd(x)")]:
        ax.text(CX - 0.4, y, txt, ha="right", va="center", fontsize=11.5)

    # Пунктирная рамка блока и пометка «× n_layer»
    frame = FancyBboxPatch(
        (CX - BOX_W / 2 - 0.35, 1.05), BOX_W + 2.05, 7.0,
        boxstyle="round,pad=0.02,rounding_size=0.25",
        facecolor="none", edgecolor="#777777", linewidth=1.3, linestyle="--",
        zorder=1,
    )
    ax.add_patch(frame)
    ax.text(CX + BOX_W / 2 + 1.55, 1.35, "× n_layer", ha="right", va="center",
            fontsize=13, fontweight="bold", color="#555555")

    fig.savefig(OUT_PATH, dpi=DPI, metadata={"Software": None},
                facecolor="white")
    plt.close(fig)
    print(f"saved {OUT_PATH}")


if __name__ == "__main__":
    main()
