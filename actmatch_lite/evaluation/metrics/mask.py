"""M4 area, M5 crispness, M6 compactness: properties of the mask alone (no classifier).

Each function takes a mask ``(B, 1, H, W)`` and returns one value per image, shape ``(B,)``.
Hard masks are ``m = 1[m_soft > threshold]``; bool masks are used as they are.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from actmatch_lite.evaluation.metrics._common import THRESHOLD, check_mask_alone, hard_mask

DIRECTION = {"area": "lower", "crispness": "lower", "total_variation": "lower", "components": "lower"}
CRISP_BAND = (0.05, 0.95)        # soft values inside this band count as undecided (docs/EVALUATION.md, M5)
EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)   # diagonal pixels touch: 8-connectivity


def area(m: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M4 ↓. ``(1 / HW) Σ_ij m_ij``: the fraction of pixels the hard mask keeps, in [0, 1]."""
    return hard_mask(check_mask_alone(m), threshold).flatten(1).mean(1)


def crispness(m_soft: torch.Tensor, *, band: tuple[float, float] = CRISP_BAND) -> torch.Tensor:
    """M5 ↓. ``(1 / HW) Σ_ij 1[low ≤ m_soft_ij ≤ high]``: the fraction of undecided soft values, in [0, 1].

    0 for a binary mask; 1 for a mask that is 0.5 everywhere.
    """
    low, high = band
    m_soft = check_mask_alone(m_soft, "m_soft")
    return ((m_soft >= low) & (m_soft <= high)).flatten(1).float().mean(1)


def total_variation(m: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M6 ↓. ``Σ_ij |m_i+1,j - m_ij| + |m_i,j+1 - m_ij|`` of the hard mask (4-neighbour, paper's TV).

    For a binary mask this counts the pixel edges between kept and removed pixels: the length of the
    mask's boundary in pixels (the image border is not counted). A full or empty mask has 0; an ``s × s``
    square inside the image has ``4 s``; an ``H × W`` checkerboard has ``H (W - 1) + W (H - 1)``.
    """
    m = hard_mask(check_mask_alone(m), threshold)
    rows = (m[..., 1:, :] - m[..., :-1, :]).abs().flatten(1).sum(1)
    cols = (m[..., :, 1:] - m[..., :, :-1]).abs().flatten(1).sum(1)
    return rows + cols


def components(m: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M6 ↓. The number of 8-connected components of the hard mask (``scipy.ndimage.label``), as floats.

    0 for an empty mask, 1 for one blob. A checkerboard is 1: its kept squares touch at the corners.
    """
    m = hard_mask(check_mask_alone(m), threshold)
    counts = [ndimage.label(mi[0], structure=EIGHT_NEIGHBOURS)[1] for mi in m.bool().cpu().numpy()]
    return torch.tensor(counts, dtype=torch.float32, device=m.device)
