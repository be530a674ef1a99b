"""All plotting. Figures are small (they are committed inside notebooks); each function returns the figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
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
