"""All plotting. Figures are small (they are committed inside notebooks); each function returns the figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

CELL_INCHES = 1.6   # one image panel
DPI = 72            # keeps committed PNGs small


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor in [0, 1] -> ``(H, W, 3)`` or ``(H, W)`` array for imshow."""
    img = img.detach().float().cpu()
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 3:
        img = img.permute(1, 2, 0)
    return img.clamp(0, 1).numpy()


def _imshow(ax, img: torch.Tensor, title: str | None = None, cmap: str | None = None) -> None:
    arr = to_numpy_image(img)
    ax.imshow(arr, cmap=cmap or ("gray" if arr.ndim == 2 else None), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def show_images(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
                ncols: int | None = None, cmap: str | None = None):
    """A grid of images (each ``(C, H, W)`` or ``(H, W)``), optional titles."""
    n = len(images)
    ncols = ncols or min(n, 8)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(CELL_INCHES * ncols, CELL_INCHES * nrows), dpi=DPI,
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _imshow(ax, images[i], titles[i] if titles else None, cmap)
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def show_explanations(x: torch.Tensor, m_soft: torch.Tensor, m: torch.Tensor, e: torch.Tensor,
                      titles: Sequence[str] | None = None, max_rows: int = 4):
    """One row per image: original | soft mask | hard mask | explanation ``e``. Tensors ``(B, ·, H, W)``."""
    rows = min(len(x), max_rows)
    fig, axes = plt.subplots(rows, 4, figsize=(CELL_INCHES * 4, CELL_INCHES * rows), dpi=DPI, squeeze=False)
    heads = ("image", "soft mask", "mask", "explanation")
    for i in range(rows):
        _imshow(axes[i, 0], x[i], titles[i] if titles else heads[0])
        _imshow(axes[i, 1], m_soft[i], heads[1] if i == 0 else None, cmap="viridis")
        _imshow(axes[i, 2], m[i].float(), heads[2] if i == 0 else None)
        _imshow(axes[i, 3], e[i], heads[3] if i == 0 else None)
    fig.tight_layout()
    return fig


def overlay(x: torch.Tensor, m: torch.Tensor, colour: tuple[float, float, float] = (1.0, 0.2, 0.2),
            alpha: float = 0.5) -> torch.Tensor:
    """``x (C, H, W)`` with mask ``m (1, H, W)`` tinted in ``colour``; returns ``(3, H, W)``."""
    rgb = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    tint = torch.tensor(colour, dtype=rgb.dtype).view(3, 1, 1)
    m = m.float()
    return rgb * (1 - alpha * m) + tint * alpha * m


def show_instances(x: torch.Tensor, masks: Sequence[torch.Tensor], titles: Sequence[str] | None = None):
    """An image ``(C, H, W)`` and one overlay per instance mask ``(1, H, W)``."""
    colours = [(1, .2, .2), (.2, .6, 1), (.2, .9, .3), (1, .8, .1), (.8, .3, 1)]
    panels = [x] + [overlay(x, mk, colours[i % len(colours)]) for i, mk in enumerate(masks)]
    heads = ["image"] + [f"instance {i + 1}" for i in range(len(masks))]
    return show_images(panels, titles or heads)


def plot_history(history: Mapping[str, Sequence[float]], terms: Sequence[str] | None = None, logy: bool = True):
    """Loss curves: one line per term of an explanation's ``history``."""
    fig, ax = plt.subplots(figsize=(4.5, 2.6), dpi=DPI)
    for name in terms or history:
        values = np.asarray(history[name], dtype=float)
        ax.plot(np.maximum(values, 1e-8) if logy else values, label=name, lw=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step", fontsize=8), ax.set_ylabel("loss", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


# -- added for the notebooks 00-06 (feature maps, grouped bars, curves) ---------------------------------
def show_activations(acts: Mapping[str, torch.Tensor], channels: int = 6):
    """One row per layer: the first ``channels`` channels of each activation ``(C, H, W)``.

    Each channel is scaled to its own [0, 1] range (0 stays black for post-ReLU maps), so the pattern
    shows whatever the magnitude; the row title gives the layer name and the map's shape.
    """
    names = list(acts)
    fig, axes = plt.subplots(len(names), channels, figsize=(1.1 * channels, 1.2 * len(names)), dpi=DPI,
                             squeeze=False)
    for row, name in enumerate(names):
        a = acts[name].detach().float().cpu()
        for col in range(channels):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if col >= a.shape[0]:
                ax.axis("off")
                continue
            ch = a[col]
            ax.imshow((ch / ch.max().clamp_min(1e-8)).numpy(), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
            if col == 0:
                ax.set_ylabel(f"{name}\n{tuple(a.shape)}", fontsize=6)
    fig.tight_layout()
    return fig


def plot_bars(values: Mapping[str, Sequence[float]], groups: Sequence[str], ylabel: str = "",
              logy: bool = False, title: str | None = None):
    """Grouped bars: ``values[series][g]`` for every group ``g`` in ``groups`` (one colour per series)."""
    fig, ax = plt.subplots(figsize=(4.8, 2.6), dpi=DPI)
    n = len(values)
    width = 0.8 / max(n, 1)
    pos = np.arange(len(groups))
    for i, (name, vals) in enumerate(values.items()):
        ax.bar(pos + (i - (n - 1) / 2) * width, np.asarray(vals, dtype=float), width, label=name)
    ax.set_xticks(pos)
    ax.set_xticklabels(groups, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=8)
    if n > 1:
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_curves(x: Sequence[float], series: Mapping[str, Sequence[float]], xlabel: str = "", ylabel: str = "",
                logx: bool = False, title: str | None = None, markers: bool = True):
    """Lines ``series[name]`` against ``x`` (e.g. area and p(y*) against λ_area)."""
    fig, ax = plt.subplots(figsize=(4.2, 2.5), dpi=DPI)
    for name, ys in series.items():
        ax.plot(np.asarray(x, dtype=float), np.asarray(ys, dtype=float), marker="o" if markers else None,
                ms=3, lw=1, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=8), ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


# -- added for the notebooks 07-12 (mask grids per method, heatmaps of metric tables) --------------------
def show_mask_grid(x: torch.Tensor, masks: Mapping[str, torch.Tensor], max_rows: int = 3,
                   row_titles: Sequence[str] | None = None):
    """Rows = images, columns = the image then one overlay per entry of ``masks`` (``name -> (B, 1, H, W)``)."""
    rows, names = min(len(x), max_rows), list(masks)
    fig, axes = plt.subplots(rows, len(names) + 1, figsize=(1.25 * (len(names) + 1), 1.3 * rows), dpi=DPI,
                             squeeze=False)
    for i in range(rows):
        _imshow(axes[i, 0], x[i], row_titles[i] if row_titles else ("image" if i == 0 else None))
        for j, name in enumerate(names):
            m = masks[name][i].float().cpu()
            _imshow(axes[i, j + 1], overlay(x[i].cpu(), m), f"{name}\n{100 * float(m.mean()):.0f} %", None)
    for ax in axes.flat:
        ax.title.set_fontsize(6)
    fig.tight_layout()
    return fig


def plot_heatmap(values, rows: Sequence[str], cols: Sequence[str], fmt: str = ".2f", title: str | None = None,
                 marks: Sequence[Sequence[str]] | None = None, cmap: str = "viridis", xlabel: str = "",
                 ylabel: str = ""):
    """A seaborn heatmap of ``values (len(rows), len(cols))``; ``marks[i][j]`` (e.g. ``"×"``) is added to a cell."""
    arr = np.asarray(values, dtype=float)
    labels = np.vectorize(lambda v: format(v, fmt))(arr).astype(object)
    if marks is not None:
        labels = np.array([[f"{labels[i, j]}{marks[i][j]}" for j in range(arr.shape[1])] for i in range(arr.shape[0])])
    fig, ax = plt.subplots(figsize=(0.62 * len(cols) + 1.8, 0.3 * len(rows) + 1.0), dpi=DPI)
    sns.heatmap(arr, annot=labels, fmt="", cmap=cmap, cbar=False, ax=ax, annot_kws={"fontsize": 6},
                xticklabels=list(cols), yticklabels=list(rows))
    ax.tick_params(labelsize=7)
    ax.set_xlabel(xlabel, fontsize=8), ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
