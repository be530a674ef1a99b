"""Attribution baselines, compared with the activation-matching mask at the same area.

Every entry of ``BASELINES`` is a callable ``(clf, x, target=None, *, layer=None, seed=0, fill="zero") ->
scores (B, 1, H, W)``: higher means "keep this pixel". ``masks_at_area(scores, k)`` turns scores into binary
masks with exactly ``k_b`` pixels per image; ``baseline_masks`` does both for a reference mask.
``fill`` (used by IG, Occlusion, RISE and meaningful perturbation) is a fill name, a float or a tensor.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from actmatch_lite.evaluation.baselines.area import masks_at_area, pixel_count
from actmatch_lite.evaluation.baselines.gradients import gradcam_scores, integrated_gradients_scores, occlusion_scores
from actmatch_lite.evaluation.baselines.perturbation import meaningful_perturbation_scores
from actmatch_lite.evaluation.baselines.rise import rise_masks, rise_scores
from actmatch_lite.evaluation.baselines.simple import random_scores, sobel_scores, square_scores

BASELINES: dict[str, Callable[..., torch.Tensor]] = {
    "random": random_scores,
    "square": square_scores,
    "sobel": sobel_scores,
    "gradcam": gradcam_scores,
    "integrated-gradients": integrated_gradients_scores,
    "occlusion": occlusion_scores,
    "rise": rise_scores,
    "meaningful-perturbation": meaningful_perturbation_scores,
}


def baseline_masks(name: str, clf: nn.Module, x: torch.Tensor, m_ref: torch.Tensor, target=None,
                   **options) -> torch.Tensor:
    """Bool masks ``(B, 1, H, W)`` of baseline ``name`` at the area of the reference hard mask ``m_ref``.

    ``options`` go to the baseline (``layer``, ``seed``, ``fill``, and its own settings).
    """
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    return masks_at_area(BASELINES[name](clf, x, target, **options), pixel_count(m_ref))


__all__ = ["BASELINES", "baseline_masks", "masks_at_area", "pixel_count", "random_scores", "square_scores",
           "sobel_scores", "gradcam_scores", "integrated_gradients_scores", "occlusion_scores",
           "rise_scores", "rise_masks", "meaningful_perturbation_scores"]
