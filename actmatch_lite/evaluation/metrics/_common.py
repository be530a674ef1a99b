"""Helpers every metric shares: hard masks, the target class, batched probabilities, the summary."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from actmatch_lite._validate import InputError, check_mask
from actmatch_lite.method.fill import make_fill
from actmatch_lite.method.frozen import frozen

THRESHOLD = 0.5        # a soft mask becomes hard with m = 1[m_soft > THRESHOLD] (docs/METHOD.md)
BATCH_SIZE = 256       # images per forward pass when a metric builds many perturbed copies


def check_mask_alone(m, name: str = "m") -> torch.Tensor:
    """Check a mask ``(B, 1, H, W)`` that comes without images; bool masks are cast to float."""
    if not isinstance(m, torch.Tensor) or m.dim() != 4 or m.shape[1] != 1:
        shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
        raise InputError(f"{name} must be a tensor of shape (B, 1, H, W), got {shape}.")
    return check_mask(m, m if m.is_floating_point() else m.float(), name)


def hard_mask(m: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """``1[m > threshold]`` as float; a bool mask is taken as it is (the threshold does not apply)."""
    return m.float() if m.dtype == torch.bool else (m > threshold).to(m.dtype)


def get_fill(x: torch.Tensor, fill, mean) -> torch.Tensor:
    """The fill image for ``x`` (see ``actmatch_lite.method.fill.make_fill``); ``fill="mean"`` needs ``mean``.

    A metric never guesses the mean colour: a grey 0.5 in place of the dataset's mean would score another fill.
    """
    if isinstance(fill, str) and fill == "mean" and mean is None:
        raise InputError("fill='mean' needs the dataset mean colour: pass mean=model.mean (a LoadedModel's) or "
                         "mean=(r, g, b) in pixel space, or choose fill='zero' or 'blur'")
    return make_fill(x, fill, mean=mean)


def probabilities(clf: nn.Module, x: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """``softmax(clf(x))`` of shape ``(N, K)``, in chunks of ``batch_size``, frozen and without gradients."""
    with frozen(clf), torch.no_grad():
        return torch.cat([clf(chunk).softmax(-1) for chunk in x.split(batch_size)])


def target_class(clf: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """``y* (B,)``: ``target`` when given (an int or a tensor of B labels), else ``argmax f(x)``."""
    if target is None:
        return probabilities(clf, x).argmax(-1)
    y = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if y.numel() == 1:
        y = y.expand(x.shape[0])
    if y.shape != (x.shape[0],):
        raise InputError(f"target must be an int or {x.shape[0]} labels, got shape {tuple(y.shape)}.")
    return y


def prob_of(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``p[i, y_i]`` for probabilities ``p (N, K)`` and labels ``y (N,)``."""
    return p.gather(1, y.view(-1, 1)).squeeze(1)


class Summary(NamedTuple):
    """Mean and standard deviation over the finite entries, and how many there were."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f} (n={self.n})"


def summarise(values: torch.Tensor) -> Summary:
    """Reduce per-image values ``(B,)`` to one table entry. NaN marks an undefined value and is skipped."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return Summary(math.nan, math.nan, 0)
    std = float(v.std()) if v.numel() > 1 else 0.0
    return Summary(float(v.mean()), std, int(v.numel()))
