"""Turn any score map into a binary mask with a given number of pixels: the equal-area comparison.

Every baseline is compared with the activation-matching mask at the **same area**: per image, the top
``k`` pixels of its score map, where ``k`` is the number of pixels our hard mask keeps.
"""
from __future__ import annotations

import torch

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation.metrics._common import THRESHOLD, check_mask_alone, hard_mask
from actmatch_lite.evaluation.metrics.curves import pixel_rank


def pixel_count(m: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """``k (B,)``: the number of pixels the hard mask ``1[m > threshold]`` keeps (bool masks as they are)."""
    return hard_mask(check_mask_alone(m), threshold).flatten(1).sum(1).long()


def masks_at_area(scores: torch.Tensor, k) -> torch.Tensor:
    """Bool masks ``(B, 1, H, W)`` that keep exactly ``k_b`` pixels of image ``b``: its ``k_b`` highest scores.

    ``k`` is an int (same for every image) or a tensor ``(B,)``. Ties are broken deterministically:
    among equal scores the pixel with the lower row-major index is kept first (stable sort).
    """
    rank = pixel_rank(scores)                     # checks the shape and finiteness of scores
    n = rank.shape[1]
    k = torch.as_tensor(k, device=rank.device).long().reshape(-1).expand(rank.shape[0])
    if (k < 0).any() or (k > n).any():
        raise InputError(f"k must lie in [0, {n}] (the pixels per image), got {k.tolist()}.")
    return (rank < k[:, None]).view_as(scores)
