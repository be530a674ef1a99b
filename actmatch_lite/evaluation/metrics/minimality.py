"""M11 1-minimality: is any kept patch superfluous? An empirical abductive check.

A sufficient explanation (Ignatiev et al., "Abduction-based explanations for machine learning models",
AAAI 2019) is *subset-minimal* when no part of it can be dropped without losing the prediction. Here the
parts are the cells of a grid of ``patch × patch`` pixels, and only single-cell removals are tried.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from actmatch_lite._validate import check_images, check_mask
from actmatch_lite.evaluation.metrics._common import (BATCH_SIZE, THRESHOLD, get_fill, hard_mask, probabilities,
                                                      target_class)
from actmatch_lite.method.fill import apply_mask

DIRECTION = {"one_minimality": "higher"}
PATCH = 4   # grid cell side in pixels; pick about 1/8 to 1/16 of the image side


def patch_ids(height: int, width: int, patch: int = PATCH, device=None) -> torch.Tensor:
    """``(H, W)`` index of the grid cell each pixel belongs to (row-major; the last row/column may be partial)."""
    rows = torch.arange(height, device=device) // patch
    cols = torch.arange(width, device=device) // patch
    return rows[:, None] * math.ceil(width / patch) + cols[None, :]


def one_minimality(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *, patch: int = PATCH,
                   fill="zero", mean=None, threshold: float = THRESHOLD,
                   batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """M11 ↑. The fraction of kept cells whose removal breaks sufficiency, per image ``(B,)``.

    With ``suff(m) = 1[argmax f(m ⊙ x + (1 - m) ⊙ fill) = y*]`` (probabilities' argmax) and the kept cells
    ``P = {c : m has a pixel in cell c}``::

        one_minimality = (1 / |P|) Σ_{c ∈ P} (1 - suff(m with cell c set to 0))

    1.0 means no kept cell is superfluous. NaN where it is undefined: the mask is not sufficient to begin
    with, or keeps nothing. Costs one forward pass per kept cell, batched ``batch_size`` at a time.
    """
    check_images(x)
    m = hard_mask(check_mask(m, x), threshold)
    y = target_class(clf, x, target)
    fill_img = get_fill(x, fill, mean)
    ids = patch_ids(*x.shape[-2:], patch, device=x.device)
    cells = torch.zeros(len(x), int(ids.max()) + 1, device=x.device).index_add_(
        1, ids.flatten(), m.flatten(1))   # kept pixels per cell, (B, n_cells)
    pairs = (cells > 0).nonzero()         # (image, cell) for every kept cell
    sufficient = probabilities(clf, apply_mask(x, m, fill_img)).argmax(-1) == y

    broken = []
    for chunk in pairs.split(batch_size):
        b, c = chunk[:, 0], chunk[:, 1]
        m_minus = m[b] * (ids != c.view(-1, 1, 1)).unsqueeze(1).to(m.dtype)
        kept = probabilities(clf, apply_mask(x[b], m_minus, fill_img[b])).argmax(-1) == y[b]
        broken.append((~kept).float())
    broken = torch.cat(broken) if broken else torch.zeros(0, device=x.device)

    n_kept = torch.zeros(len(x), device=x.device).index_add_(0, pairs[:, 0], torch.ones_like(broken))
    n_broken = torch.zeros(len(x), device=x.device).index_add_(0, pairs[:, 0], broken)
    score = n_broken / n_kept.clamp(min=1)
    return torch.where(sufficient & (n_kept > 0), score, torch.full_like(score, math.nan))
