"""M9 localisation and M10 instances: explanations against ground-truth object masks (generated data).

No classifier is involved. Masks are ``(B, 1, H, W)``; hard masks are ``1[m > threshold]`` (bool as is).
Every function returns one value per image, shape ``(B,)``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation.metrics._common import THRESHOLD, check_mask_alone, hard_mask

DIRECTION = {"pointing_game": "higher", "iou": "higher", "precision": "higher",
             "instance_recall": "higher", "instance_purity": "higher"}
MATCH_IOU = 0.3          # an explanation matches an instance with IoU ≥ 0.3 ...
MATCH_PRECISION = 0.7    # ... or with ≥ 70 % of its pixels on it (docs/EVALUATION.md, M10)
PURITY = 0.7             # an explanation is pure with ≥ 70 % of its pixels on one instance


def _pair(m, gt, threshold):
    m, gt = hard_mask(check_mask_alone(m), threshold), hard_mask(check_mask_alone(gt, "gt"), threshold)
    if m.shape != gt.shape:
        raise InputError(f"m and gt must have the same shape, got {tuple(m.shape)} and {tuple(gt.shape)}.")
    return m.flatten(1), gt.flatten(1)


def pointing_game(m_soft: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """M9 ↑ (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016).

    ``hit = |argmax(m_soft) ∩ gt| / |argmax(m_soft)|``: 1 when the maximum of the soft mask lies on the object.
    When several pixels share the maximum, the hit is the fraction of them on the object, so ties are
    neither rewarded nor punished by an arbitrary choice. No tolerance border is used.
    """
    m_soft = check_mask_alone(m_soft, "m_soft").flatten(1)
    gt = hard_mask(check_mask_alone(gt, "gt")).flatten(1)
    if m_soft.shape != gt.shape:
        raise InputError(f"m_soft and gt must have the same shape, got {tuple(m_soft.shape)} and {tuple(gt.shape)}.")
    top = (m_soft == m_soft.max(1, keepdim=True).values).float()
    return (top * gt).sum(1) / top.sum(1)


def iou(m: torch.Tensor, gt: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M9 ↑. ``|m ∩ gt| / |m ∪ gt|``; 1 when both are empty (they agree)."""
    m, gt = _pair(m, gt, threshold)
    inter, union = (m * gt).sum(1), ((m + gt) > 0).float().sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def precision(m: torch.Tensor, gt: torch.Tensor, *, threshold: float = THRESHOLD) -> torch.Tensor:
    """M9 ↑. ``|m ∩ gt| / |m|``: the fraction of kept pixels on the object; 0 for an empty mask."""
    m, gt = _pair(m, gt, threshold)
    return (m * gt).sum(1) / m.sum(1).clamp(min=1)


def _paired_sets(explanations, instances, threshold):
    """``(es, gs)``: the explanations and the instances of every canvas as flat hard masks, one pair per canvas."""
    es, gs = _flat_sets(explanations, "explanations", threshold), _flat_sets(instances, "instances", threshold)
    if len(es) != len(gs):
        raise InputError(f"{len(es)} sets of explanations but {len(gs)} sets of instances.")
    return es, gs


def _flat_sets(sets, name, threshold):
    """Per image, a ``(N_b, H·W)`` float tensor of hard masks, from a tensor ``(B, N, [1,] H, W)`` or a list."""
    out = []
    for s in sets:
        if not isinstance(s, torch.Tensor) or s.dim() not in (3, 4):
            raise InputError(f"each entry of {name} must be a tensor (N, H, W) or (N, 1, H, W).")
        out.append(hard_mask(s, threshold).flatten(1))
    return out


def _overlaps(e, g):
    """Intersections ``(E, N)``, explanation sizes ``(E,)`` and instance sizes ``(N,)``."""
    if e.shape[1] != g.shape[1]:
        raise InputError(f"explanations and instances differ in size ({e.shape[1]} vs {g.shape[1]} pixels).")
    return e @ g.T, e.sum(1), g.sum(1)


def instance_recall(explanations: Sequence[torch.Tensor], instances: Sequence[torch.Tensor], *,
                    threshold: float = THRESHOLD) -> torch.Tensor:
    """M10 ↑. The fraction of ground-truth instances matched by one explanation, per canvas ``(B,)``.

    Explanation ``j`` may match instance ``i`` when ``IoU(e_j, g_i) ≥ 0.3`` or ``|e_j ∩ g_i| / |e_j| ≥ 0.7``.
    Matching is one-to-one (a maximum matching, ``scipy.optimize.linear_sum_assignment``): one mask
    covering every instance matches only one of them. ``recall = #matched / N``; NaN when a canvas has
    no instances. ``explanations[b]`` is ``(E_b, H, W)`` (or ``(E_b, 1, H, W)``), ``instances[b]`` is ``(N_b, H, W)``.
    """
    es, gs = _paired_sets(explanations, instances, threshold)
    out = []
    for e, g in zip(es, gs):
        if len(g) == 0:
            out.append(math.nan)
            continue
        inter, e_size, g_size = _overlaps(e, g)
        union = e_size[:, None] + g_size[None, :] - inter
        ok = ((inter >= MATCH_IOU * union) | (inter >= MATCH_PRECISION * e_size[:, None])) & (inter > 0)
        ok = ok.cpu().numpy()
        rows, cols = linear_sum_assignment(ok, maximize=True)   # most admissible pairs, each row/col once
        out.append(float(ok[rows, cols].sum()) / len(g))
    return torch.tensor(out)


def instance_purity(explanations: Sequence[torch.Tensor], instances: Sequence[torch.Tensor], *,
                    threshold: float = THRESHOLD) -> torch.Tensor:
    """M10 ↑. The fraction of explanations with ``max_i |e_j ∩ g_i| / |e_j| ≥ 0.7``, per canvas ``(B,)``.

    An empty explanation lies on no instance and is impure; NaN when a canvas has no explanations.
    """
    es, gs = _paired_sets(explanations, instances, threshold)
    out = []
    for e, g in zip(es, gs):
        if len(e) == 0:
            out.append(math.nan)
            continue
        inter, e_size, _ = _overlaps(e, g)
        best = inter.max(1).values if len(g) else torch.zeros(len(e), device=e.device)
        out.append(float(((best >= PURITY * e_size) & (e_size > 0)).float().mean()))
    return torch.tensor(out)
