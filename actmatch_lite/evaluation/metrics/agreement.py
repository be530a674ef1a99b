"""M12 sanity and M13 stability: how much two sets of masks agree.

* Sanity (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018) ↓: masks for the trained
  classifier against masks for the same classifier with randomised weights should *disagree*.
* Stability ↑: masks should agree across seeds and follow the object under a small shift.

Masks are ``(B, 1, H, W)``; hard masks are ``1[m > threshold]`` (bool as is). Values per image ``(B,)``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from scipy.stats import rankdata

from actmatch_lite._validate import InputError, check_images
from actmatch_lite.evaluation.metrics._common import THRESHOLD, check_mask_alone, get_fill
from actmatch_lite.evaluation.metrics.localisation import iou

DIRECTION = {"sanity_iou": "lower", "sanity_spearman": "lower", "seed_stability": "higher",
             "shift_stability": "higher"}
SHIFT = (2, 2)   # (down, right) in pixels: a 2-pixel shift along each axis


def sanity_iou(m_trained: torch.Tensor, m_random: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M12 ↓. ``|m_t ∩ m_r| / |m_t ∪ m_r|`` of the hard masks (1 when both are empty)."""
    return iou(m_trained, m_random, threshold=threshold)


def sanity_spearman(s_trained: torch.Tensor, s_random: torch.Tensor) -> torch.Tensor:
    """M12 ↓. Spearman's ρ between two soft masks or score maps: Pearson correlation of their pixel ranks.

    Tied values get their average rank; ρ ∈ [-1, 1] (1 identical order, -1 reversed); NaN when a map is
    constant (its ranks carry no order).
    """
    a, b = check_mask_alone(s_trained, "s_trained"), check_mask_alone(s_random, "s_random")
    if a.shape != b.shape:
        raise InputError(f"the two maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}.")
    ra = torch.from_numpy(rankdata(a.flatten(1).double().cpu().numpy(), axis=1))
    rb = torch.from_numpy(rankdata(b.flatten(1).double().cpu().numpy(), axis=1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    rho = torch.where(denom > 0, (ra * rb).sum(1) / denom.clamp(min=1e-300), torch.full_like(denom, math.nan))
    return rho.float().to(a.device)


def seed_stability(masks: Sequence[torch.Tensor], *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M13 ↑. Mean IoU over all pairs of the hard masks of the same images from ``S ≥ 2`` seeds."""
    if len(masks) < 2:
        raise InputError(f"seed_stability needs masks from at least 2 seeds, got {len(masks)}.")
    pairs = [iou(a, b, threshold=threshold) for a, b in itertools.combinations(masks, 2)]
    return torch.stack(pairs).mean(0)


def _span(d: int, n: int) -> tuple[slice, slice]:
    """(destination, source) slices along one axis for content moved by ``d`` pixels."""
    return (slice(d, n), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, n))


def shift_images(x: torch.Tensor, shift: tuple[int, int] = SHIFT, *, fill="zero", mean=None) -> torch.Tensor:
    """``x`` moved down by ``shift[0]`` and right by ``shift[1]`` pixels; the uncovered border takes the fill."""
    (dy_to, dy_from), (dx_to, dx_from) = _span(shift[0], x.shape[-2]), _span(shift[1], x.shape[-1])
    out = get_fill(x, fill, mean).clone()
    out[..., dy_to, dx_to] = x[..., dy_from, dx_from]
    return out


def shift_iou(m: torch.Tensor, m_shifted: torch.Tensor, shift: tuple[int, int] = SHIFT, *,
              threshold: float = THRESHOLD) -> torch.Tensor:
    """M13 ↑. IoU between ``m`` and ``m_shifted`` (the mask of the shifted image) moved back by ``shift``.

    Only the pixels visible in both images are compared; the border strip that moved in or out is left out.
    """
    (dy_to, dy_from), (dx_to, dx_from) = _span(shift[0], m.shape[-2]), _span(shift[1], m.shape[-1])
    return iou(m[..., dy_from, dx_from], m_shifted[..., dy_to, dx_to], threshold=threshold)


def shift_stability(explain_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, *,
                    shift: tuple[int, int] = SHIFT, fill="zero", mean=None) -> torch.Tensor:
    """M13 ↑ end to end: explain ``x`` and ``shift_images(x)`` with ``explain_fn(x) -> (m_soft, m)``, then
    ``shift_iou`` of the two hard masks. ``fill`` fills the border the shift uncovers."""
    check_images(x)
    _, m = explain_fn(x)
    _, m_shifted = explain_fn(shift_images(x, shift, fill=fill, mean=mean))
    return shift_iou(m, m_shifted, shift)
