"""All plotting, in one figure style; each function returns the figure.

The style (:data:`STYLE`, applied by every function here through :func:`styled`; :func:`use_style` applies it to
a notebook's own plots) is sized for reading at display size, where one PNG pixel is one screen pixel:

* ``DPI`` 100 and text of at least 9 pt (``FONT_PT``, ``SMALL_PT``): 9 pt is 12.5 px, about 9 pt on screen;
* image cells ``PANEL_INCHES`` = 2.5 in, images about 230 px tall (a 224 px photo at full resolution), narrowed
  only when a row would pass ``MAX_WIDTH_INCHES`` (about 1000 px, the width of a notebook's output area, beyond
  which Jupyter scales the figure down and the text with it);
* one colour map for masks, :data:`MASK_CMAP` (soft and hard masks alike: 0 dark, 1 bright), one tint for mask
  overlays, :data:`MASK_COLOUR`; activation maps use :data:`ACTIVATION_CMAP`.

Figures are committed inside notebooks, so photos are drawn with 6 bits per channel (:data:`PHOTO_LEVELS`): the
difference is invisible and the PNG about a third smaller.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

DPI = 100
FONT_PT = 10            # titles, labels
SMALL_PT = 9            # ticks, legends, annotations: the smallest text in any figure
PANEL_INCHES = 2.5      # one image cell: 250 px at DPI 100, of which the image takes about 230
MIN_PANEL_INCHES = 1.6  # narrowest panel of a wide grid of small images (shapes, 64 px)
MAX_WIDTH_INCHES = 10.0
PLOT_SIZE = (6.4, 3.4)  # line and bar charts, inches
MASK_CMAP = "viridis"
ACTIVATION_CMAP = "magma"
MASK_COLOUR = (1.0, 0.2, 0.2)
INSTANCE_COLOURS = [(1, .2, .2), (.2, .6, 1), (.2, .9, .3), (1, .8, .1), (.8, .3, 1)]
PHOTO_LEVELS = 64       # grey levels per channel of a photo panel (lossless PNG compresses the rest)

STYLE = {
    "figure.dpi": DPI, "savefig.dpi": DPI,
    "font.size": FONT_PT, "axes.titlesize": FONT_PT, "axes.labelsize": FONT_PT, "figure.titlesize": FONT_PT + 1,
    "xtick.labelsize": SMALL_PT, "ytick.labelsize": SMALL_PT, "legend.fontsize": SMALL_PT,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
    "lines.linewidth": 1.6, "lines.markersize": 5,
    "image.cmap": MASK_CMAP, "image.interpolation": "nearest",
}


def styled(fn):
    """Draw ``fn``'s figure under :data:`STYLE` (the caller's rcParams are restored afterwards)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def use_style() -> None:
    """Apply :data:`STYLE` to every later figure of this session (a notebook's own ``plt`` plots)."""
    plt.rcParams.update(STYLE)


def panel_inches(ncols: int) -> float:
    """The side of one image panel in a row of ``ncols``: ``PANEL_INCHES`` unless the row would be too wide."""
    return max(MIN_PANEL_INCHES, min(PANEL_INCHES, MAX_WIDTH_INCHES / max(ncols, 1)))


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
    if arr.ndim == 3:   # a colour photo: fewer levels, invisible at display size, a third off the PNG
        arr = np.round(arr * (PHOTO_LEVELS - 1)) / (PHOTO_LEVELS - 1)
    ax.imshow(arr, cmap=cmap or ("gray" if arr.ndim == 2 else None), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if title:
        ax.set_title(title)


def _grid(nrows: int, ncols: int):
    side = panel_inches(ncols)
    title_room = 0.45   # inches per row for a one- or two-line title
    return plt.subplots(nrows, ncols, figsize=(side * ncols, (side + title_room) * nrows), dpi=DPI, squeeze=False)


@styled
def show_images(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
                ncols: int | None = None, cmap: str | None = None):
    """A grid of images (each ``(C, H, W)`` or ``(H, W)``), optional titles; at most 4 per row by default.
    Pass ``cmap=viz.MASK_CMAP`` for masks (grey images default to ``"gray"``)."""
    n = len(images)
    ncols = ncols or min(n, 4)
    nrows = (n + ncols - 1) // ncols
    fig, axes = _grid(nrows, ncols)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _imshow(ax, images[i], titles[i] if titles else None, cmap)
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def show_masks(masks: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
               ncols: int | None = None):
    """Soft or hard masks (each ``(1, H, W)`` or ``(H, W)``) in the masks' colour map :data:`MASK_CMAP`."""
    return show_images([m.float() for m in masks], titles, ncols=ncols, cmap=MASK_CMAP)


@styled
def show_explanations(x: torch.Tensor, m_soft: torch.Tensor, m: torch.Tensor, e: torch.Tensor,
                      titles: Sequence[str] | None = None, max_rows: int = 4):
    """One row per image: original | soft mask | hard mask | explanation ``e``. Tensors ``(B, ·, H, W)``."""
    rows = min(len(x), max_rows)
    fig, axes = _grid(rows, 4)
    heads = ("image", "soft mask", "mask", "explanation")
    for i in range(rows):
        _imshow(axes[i, 0], x[i], titles[i] if titles else heads[0])
        _imshow(axes[i, 1], m_soft[i], heads[1] if i == 0 else None, cmap=MASK_CMAP)
        _imshow(axes[i, 2], m[i].float(), heads[2] if i == 0 else None, cmap=MASK_CMAP)
        _imshow(axes[i, 3], e[i], heads[3] if i == 0 else None)
    fig.tight_layout()
    return fig


def overlay(x: torch.Tensor, m: torch.Tensor, colour: tuple[float, float, float] = MASK_COLOUR,
            alpha: float = 0.5) -> torch.Tensor:
    """``x (C, H, W)`` with mask ``m (1, H, W)`` tinted in ``colour``; returns ``(3, H, W)``."""
    rgb = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    tint = torch.tensor(colour, dtype=rgb.dtype).view(3, 1, 1)
    m = m.float()
    return rgb * (1 - alpha * m) + tint * alpha * m


def show_instances(x: torch.Tensor, masks: Sequence[torch.Tensor], titles: Sequence[str] | None = None):
    """An image ``(C, H, W)`` and one overlay per instance mask ``(1, H, W)``, each in its own colour."""
    panels = [x] + [overlay(x, mk, INSTANCE_COLOURS[i % len(INSTANCE_COLOURS)]) for i, mk in enumerate(masks)]
    heads = ["image"] + [f"instance {i + 1}" for i in range(len(masks))]
    return show_images(panels, titles or heads, ncols=min(len(panels), 4))


@styled
def plot_history(history: Mapping[str, Sequence[float]], terms: Sequence[str] | None = None, logy: bool = True):
    """Loss curves: one line per term of an explanation's ``history``."""
    fig, ax = plt.subplots(figsize=PLOT_SIZE, dpi=DPI)
    for name in terms or history:
        values = np.asarray(history[name], dtype=float)
        ax.plot(np.maximum(values, 1e-8) if logy else values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step"), ax.set_ylabel("loss")
    ax.legend(ncol=1 if len(ax.lines) <= 6 else 2, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


# -- added for the notebooks 00-06 (feature maps, grouped bars, curves) ---------------------------------
@styled
def show_activations(acts: Mapping[str, torch.Tensor], channels: int = 6):
    """One row per layer: the first ``channels`` channels of each activation ``(C, H, W)``.

    Each channel is scaled to its own [0, 1] range (0 stays black for post-ReLU maps), so the pattern
    shows whatever the magnitude; the row title gives the layer name and the map's shape.
    """
    names = list(acts)
    side = min(1.5, (MAX_WIDTH_INCHES - 1.2) / channels)
    fig, axes = plt.subplots(len(names), channels, figsize=(side * channels + 1.2, side * len(names)), dpi=DPI,
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
            ax.imshow((ch / ch.max().clamp_min(1e-8)).numpy(), cmap=ACTIVATION_CMAP, vmin=0, vmax=1,
                      interpolation="nearest")
            if col == 0:
                ax.set_ylabel(f"{name}\n{tuple(a.shape)}", fontsize=SMALL_PT)
    fig.tight_layout()
    return fig


@styled
def plot_bars(values: Mapping[str, Sequence[float]], groups: Sequence[str], ylabel: str = "",
              logy: bool = False, title: str | None = None):
    """Grouped bars: ``values[series][g]`` for every group ``g`` in ``groups`` (one colour per series)."""
    fig, ax = plt.subplots(figsize=PLOT_SIZE, dpi=DPI)
    n = len(values)
    width = 0.8 / max(n, 1)
    pos = np.arange(len(groups))
    for i, (name, vals) in enumerate(values.items()):
        ax.bar(pos + (i - (n - 1) / 2) * width, np.asarray(vals, dtype=float), width, label=name)
    ax.set_xticks(pos)
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if n > 1:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


@styled
def plot_curves(x: Sequence[float], series: Mapping[str, Sequence[float]], xlabel: str = "", ylabel: str = "",
                logx: bool = False, title: str | None = None, markers: bool = True):
    """Lines ``series[name]`` against ``x`` (e.g. area and p(y*) against λ_area)."""
    fig, ax = plt.subplots(figsize=PLOT_SIZE, dpi=DPI)
    for name, ys in series.items():
        ax.plot(np.asarray(x, dtype=float), np.asarray(ys, dtype=float), marker="o" if markers else None,
                label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# -- added for the notebooks 07-12 (mask grids per method, heatmaps of metric tables) --------------------
@styled
def show_mask_grid(x: torch.Tensor, masks: Mapping[str, torch.Tensor], max_rows: int = 3,
                   row_titles: Sequence[str] | None = None):
    """Rows = images, columns = the image then one overlay per entry of ``masks`` (``name -> (B, 1, H, W)``)."""
    rows, names = min(len(x), max_rows), list(masks)
    fig, axes = _grid(rows, len(names) + 1)
    for i in range(rows):
        _imshow(axes[i, 0], x[i], row_titles[i] if row_titles else ("image" if i == 0 else None))
        for j, name in enumerate(names):
            m = masks[name][i].float().cpu()
            _imshow(axes[i, j + 1], overlay(x[i].cpu(), m), f"{name}\n{100 * float(m.mean()):.0f} %", None)
    fig.tight_layout()
    return fig


@styled
def show_kept_grid(x: torch.Tensor, masks: Mapping[str, torch.Tensor], row_titles: Sequence[str] | None = None,
                   grey: float = 0.5):
    """Rows = images, columns = the image then what each method keeps: ``m ⊙ x + (1 - m) · grey`` per entry of
    ``masks`` (``name -> (B, 1, H, W)`` bool), each titled with its area. Many rows of photos: pass the figure
    to :func:`as_jpeg`."""
    names = list(masks)
    fig, axes = _grid(len(x), len(names) + 1)
    for i in range(len(x)):
        xi = x[i].float().cpu()
        _imshow(axes[i, 0], xi, row_titles[i] if row_titles else None)
        for j, name in enumerate(names):
            m = masks[name][i].cpu()
            _imshow(axes[i, j + 1], torch.where(m, xi, torch.full_like(xi, grey)),
                    f"{name} {100 * float(m.float().mean()):.1f} %")
    fig.tight_layout()
    return fig


def jpeg_bytes(fig, quality: int = 85) -> bytes:
    """The figure as JPEG bytes at the house DPI, then closed: a grid of many photos is about half the bytes of
    the PNG, and a photo loses nothing visible at quality 85."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=DPI, pil_kwargs={"quality": quality})
    plt.close(fig)
    return buf.getvalue()


def as_jpeg(fig, quality: int = 85):
    """The figure as a JPEG for a notebook (``IPython.display.Image``; :func:`jpeg_bytes`), then closed."""
    from IPython.display import Image
    return Image(jpeg_bytes(fig, quality), format="jpeg")


@styled
def plot_heatmap(values, rows: Sequence[str], cols: Sequence[str], fmt: str = ".2f", title: str | None = None,
                 marks: Sequence[Sequence[str]] | None = None, cmap: str = "viridis", xlabel: str = "",
                 ylabel: str = ""):
    """A seaborn heatmap of ``values (len(rows), len(cols))``; ``marks[i][j]`` (e.g. ``"×"``) is added to a cell."""
    arr = np.asarray(values, dtype=float)
    labels = np.vectorize(lambda v: format(v, fmt))(arr).astype(object)
    if marks is not None:
        labels = np.array([[f"{labels[i, j]}{marks[i][j]}" for j in range(arr.shape[1])] for i in range(arr.shape[0])])
    width = min(MAX_WIDTH_INCHES, 0.95 * len(cols) + 2.6)
    fig, ax = plt.subplots(figsize=(width, 0.42 * len(rows) + 1.6), dpi=DPI)
    sns.heatmap(arr, annot=labels, fmt="", cmap=cmap, cbar=False, ax=ax, annot_kws={"fontsize": SMALL_PT},
                xticklabels=list(cols), yticklabels=list(rows))
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
