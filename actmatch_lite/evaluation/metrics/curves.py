"""M8 deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018) and their areas.

Pixels are ranked by a score map (a soft mask or an attribution; highest first, ties by row-major
index so the order is deterministic). At step ``s = 0 … S`` the top ``k_s = round(s · HW / S)`` pixels are

* **deletion**: replaced by the fill in ``x``: ``x_s = (1 - M_s) ⊙ x + M_s ⊙ fill``;
* **insertion**: copied from ``x`` onto the fill: ``x_s = M_s ⊙ x + (1 - M_s) ⊙ fill``,

and ``p(y* | x_s)`` (**probabilities**) is read. The area is ``∫ p dt`` by the trapezoid rule over the real
fractions ``t_s = k_s / HW``, endpoints 0 and 1 included, so it lies in [0, 1]. Deletion ↓, insertion ↑.
Use ``fill="zero"`` and ``fill="blur"`` (a blurred copy of the image, as in RISE's insertion).
"""
from __future__ import annotations

import torch
from torch import nn

from actmatch_lite._validate import InputError, check_images
from actmatch_lite.evaluation.metrics._common import BATCH_SIZE, get_fill, prob_of, probabilities, target_class
from actmatch_lite.method.fill import apply_mask, remove_mask

DIRECTION = {"deletion_auc": "lower", "insertion_auc": "higher"}
STEPS = 20   # the protocol asks for at least 20 steps


def pixel_rank(scores: torch.Tensor) -> torch.Tensor:
    """``rank (B, H·W)``: 0 for the highest score; ties go to the lower row-major index."""
    if not isinstance(scores, torch.Tensor) or scores.dim() != 4 or scores.shape[1] != 1:
        raise InputError(f"scores must be a tensor (B, 1, H, W), got "
                         f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}.")
    if not torch.isfinite(scores).all():
        raise InputError("scores contain NaN or inf values.")
    flat = scores.flatten(1).float()
    order = torch.sort(-flat, dim=1, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return rank


def step_counts(n_pixels: int, steps: int = STEPS) -> torch.Tensor:
    """``k_s = round(s · n / S)`` for ``s = 0 … S`` (halves round up); ``k_0 = 0`` and ``k_S = n``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return (2 * torch.arange(steps + 1) * n_pixels + steps) // (2 * steps)


def _curve(clf, x, scores, target, steps, fill, mean, batch_size, insert):
    check_images(x)
    if scores.shape[0] != x.shape[0] or scores.shape[-2:] != x.shape[-2:]:
        raise InputError(f"scores must have shape {(x.shape[0], 1, *x.shape[-2:])}, got {tuple(scores.shape)}.")
    y = target_class(clf, x, target)
    rank = pixel_rank(scores).view(x.shape[0], 1, *x.shape[-2:]).to(x.device)
    fill_img = get_fill(x, fill, mean)
    counts = step_counts(rank[0].numel(), steps)
    per_chunk = max(1, batch_size // x.shape[0])   # steps per forward pass, so a pass holds ≈ batch_size images
    p = []
    for ks in counts.split(per_chunk):
        m = (rank.unsqueeze(0) < ks.to(x.device).view(-1, 1, 1, 1, 1)).to(x.dtype)   # (s, B, 1, H, W)
        x_s = apply_mask(x, m, fill_img) if insert else remove_mask(x, m, fill_img)
        y_s = y.repeat(len(ks))
        p.append(prob_of(probabilities(clf, x_s.flatten(0, 1), batch_size), y_s).view(len(ks), -1))
    return counts.float() / rank[0].numel(), torch.cat(p).T


def deletion_curve(clf: nn.Module, x: torch.Tensor, scores: torch.Tensor, target=None, *, steps: int = STEPS,
                   fill="zero", mean=None, batch_size: int = BATCH_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion curve: ``(t (S+1,), p (B, S+1))`` with ``p[:, s] = p(y* | x with its top k_s pixels filled)``."""
    return _curve(clf, x, scores, target, steps, fill, mean, batch_size, insert=False)


def insertion_curve(clf: nn.Module, x: torch.Tensor, scores: torch.Tensor, target=None, *, steps: int = STEPS,
                    fill="zero", mean=None, batch_size: int = BATCH_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Insertion curve: ``(t (S+1,), p (B, S+1))`` with ``p[:, s] = p(y* | top k_s pixels of x on the fill)``."""
    return _curve(clf, x, scores, target, steps, fill, mean, batch_size, insert=True)


def deletion_auc(clf: nn.Module, x: torch.Tensor, scores: torch.Tensor, target=None, *, steps: int = STEPS,
                 fill="zero", mean=None, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """M8 ↓. ``Σ_s (t_s+1 - t_s)(p_s + p_s+1) / 2`` over the deletion curve, per image ``(B,)``."""
    t, p = deletion_curve(clf, x, scores, target, steps=steps, fill=fill, mean=mean, batch_size=batch_size)
    return torch.trapezoid(p, t.to(p.device), dim=1)


def insertion_auc(clf: nn.Module, x: torch.Tensor, scores: torch.Tensor, target=None, *, steps: int = STEPS,
                  fill="zero", mean=None, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """M8 ↑. ``Σ_s (t_s+1 - t_s)(p_s + p_s+1) / 2`` over the insertion curve, per image ``(B,)``."""
    t, p = insertion_curve(clf, x, scores, target, steps=steps, fill=fill, mean=mean, batch_size=batch_size)
    return torch.trapezoid(p, t.to(p.device), dim=1)
