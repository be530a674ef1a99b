"""Attribution baselines, compared with the activation-matching mask at the same area.

Every entry of ``BASELINES`` is a callable ``(clf, x, target=None, *, layer=None, seed=0, fill="zero") ->
scores (B, 1, H, W)``: higher means "keep this pixel". ``masks_at_area(scores, k)`` turns scores into binary
masks with exactly ``k_b`` pixels per image; ``baseline_masks`` does both for a reference mask.
``fill`` (used by IG, Occlusion, RISE, meaningful perturbation and the "fade" extremal perturbation) is a fill name,
a float or a tensor. A baseline that takes an ``area`` keyword (extremal perturbation) is given the target area
by :func:`actmatch_lite.evaluation.methods.run_baseline`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from actmatch_lite.evaluation.baselines.area import masks_at_area, pixel_count
from actmatch_lite.evaluation.baselines.extremal import extremal_perturbation_scores
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
    "extremal-perturbation": extremal_perturbation_scores,
}


def takes_area(fn: Callable[..., torch.Tensor]) -> bool:
    """Whether baseline ``fn`` takes the target area as an input (an ``area`` keyword: extremal perturbation)."""
    return "area" in inspect.signature(fn).parameters


def area_fraction(k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``k / (H·W) (B,)`` as float64, kept inside ``[1/(2HW), 1 - 1/(2HW)]`` so an empty or full reference mask
    still gives an area in (0, 1) (``masks_at_area`` then keeps its exact ``k`` pixels anyway)."""
    n = size[0] * size[1]
    return (torch.as_tensor(k, dtype=torch.float64).cpu().reshape(-1) / n).clamp(0.5 / n, 1 - 0.5 / n)


def with_area(name: str, options: dict | None, k: torch.Tensor, size: tuple[int, int]) -> dict:
    """``options`` for baseline ``name``, plus ``area = k / (H·W)`` per image (:func:`area_fraction`) when the
    baseline takes an area (:func:`takes_area`) and ``options`` do not set one."""
    options = dict(options or {})
    if takes_area(BASELINES[name]) and "area" not in options:
        options["area"] = area_fraction(k, size)
    return options


def baseline_masks(name: str, clf: nn.Module, x: torch.Tensor, m_ref: torch.Tensor, target=None,
                   **options) -> torch.Tensor:
    """Bool masks ``(B, 1, H, W)`` of baseline ``name`` at the area of the reference hard mask ``m_ref``.

    ``options`` go to the baseline (``layer``, ``seed``, ``fill``, and its own settings). A baseline that takes an
    ``area`` (:func:`takes_area`) is given ``m_ref``'s area per image unless ``options`` set one.
    """
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    k = pixel_count(m_ref)
    return masks_at_area(BASELINES[name](clf, x, target, **with_area(name, options, k, x.shape[-2:])), k)


__all__ = ["BASELINES", "baseline_masks", "takes_area", "area_fraction", "with_area", "masks_at_area", "pixel_count",
           "random_scores", "square_scores", "sobel_scores", "gradcam_scores", "integrated_gradients_scores",
           "occlusion_scores", "rise_scores", "rise_masks", "meaningful_perturbation_scores",
           "extremal_perturbation_scores"]
