"""RISE (Petsiuk, Das, Saenko, "RISE: Randomized input sampling for explanation of black-box models", BMVC 2018).

Saliency is the expected mask under the model's confidence::

    S = Σ_i p(y* | x ⊙ M_i + (1 - M_i) ⊙ fill) · M_i / (N · p_keep)

``M_i``: a ``grid × grid`` binary grid (each cell kept with probability ``p_keep``), upsampled bilinearly to
``(grid + 1)`` cells of ``ceil(H / grid) × ceil(W / grid)`` pixels and cropped at a random offset, so the
smooth masks do not all share cell borders. Reads **probabilities**. Only forward passes: a black box.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite.evaluation.baselines._common import prepare
from actmatch_lite.evaluation.metrics._common import prob_of, probabilities
from actmatch_lite.method.fill import apply_mask

N_MASKS = 1000     # the paper uses 4000 for ResNet-50; 1000 keeps a CPU run affordable
GRID = 7           # cells per side (paper: 7 for 224 × 224)
P_KEEP = 0.5       # probability that a cell is kept (paper: 0.5)
BATCH_SIZE = 256   # masked images per forward pass


def _draw(n, grid, p_keep, cell, generator):
    """The random part of N masks: kept cells ``(N, 1, grid, grid)`` and crop offsets ``(N, 2)``."""
    cells = (torch.rand(n, 1, grid, grid, generator=generator) < p_keep).float()
    offsets = torch.stack([torch.randint(0, c, (n,), generator=generator) for c in cell], 1)
    return cells, offsets


def _build(cells, offsets, size, cell):
    """Upsample the kept cells to ``(grid + 1)`` cells of ``cell`` pixels and crop ``size`` at the offsets."""
    h, w = size
    grid = cells.shape[-1]
    up = F.interpolate(cells, size=((grid + 1) * cell[0], (grid + 1) * cell[1]), mode="bilinear",
                       align_corners=False)
    return torch.stack([up[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


def rise_masks(n: int, size: tuple[int, int], *, grid: int = GRID, p_keep: float = P_KEEP,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """``N`` smooth random masks ``(N, 1, H, W)`` in [0, 1], drawn on the CPU."""
    cell = (math.ceil(size[0] / grid), math.ceil(size[1] / grid))
    return _build(*_draw(n, grid, p_keep, cell, generator), size, cell)


def rise_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer=None, seed: int = 0, fill="zero",
                n_masks: int = N_MASKS, grid: int = GRID, p_keep: float = P_KEEP,
                batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """RISE saliency ``(B, 1, H, W)`` for ``y*``; the same ``n_masks`` masks (seeded by ``seed``) for every image."""
    y, fill_img = prepare(clf, x, target, fill)
    size = tuple(x.shape[-2:])
    cell = (math.ceil(size[0] / grid), math.ceil(size[1] / grid))
    # draw everything first, build the masks chunk by chunk: the same masks whatever the batch size,
    # without holding N full-size masks in memory
    cells, offsets = _draw(n_masks, grid, p_keep, cell, torch.Generator().manual_seed(seed))
    per_pass = max(1, batch_size // x.shape[0])          # masks per forward pass, all images at once
    saliency = torch.zeros(x.shape[0], 1, *size, device=x.device, dtype=x.dtype)
    for chunk_cells, chunk_offsets in zip(cells.split(per_pass), offsets.split(per_pass)):
        m = _build(chunk_cells, chunk_offsets, size, cell).to(x)
        e = apply_mask(x.unsqueeze(0), m.unsqueeze(1), fill_img.unsqueeze(0))     # (n, B, C, H, W)
        p = prob_of(probabilities(clf, e.flatten(0, 1), batch_size), y.repeat(len(m))).view(len(m), -1)
        saliency += torch.einsum("nb,nchw->bchw", p, m)
    return saliency / (n_masks * p_keep)
