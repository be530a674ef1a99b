"""M1 sufficiency, M2 robustness, M3 necessity: does the classifier agree with the explanation?

All five functions read the classifier's **probabilities** ``p = softmax(f(·))``, take the hard mask
``m = 1[m_soft > threshold]`` (a bool mask is used as is), and return one value per image, shape ``(B,)``.
``y*`` is ``target`` when given, else the class the model predicts on ``x`` (the method explains that class).
"""
from __future__ import annotations

import torch
from torch import nn

from actmatch_lite._validate import check_images, check_mask
from actmatch_lite.evaluation.metrics._common import (THRESHOLD, get_fill, hard_mask, prob_of, probabilities,
                                                      target_class)
from actmatch_lite.method.fill import apply_mask, random_backgrounds, remove_mask

DIRECTION = {"sufficiency": "higher", "confidence_change": "higher", "robustness": "higher",
             "necessity": "higher", "necessity_drop": "higher"}
ROBUSTNESS_KINDS = ("gaussian", "uniform", "shuffle")  # noise, and other images of the batch


def _prepare(clf, x, m, target, threshold):
    check_images(x)
    m = hard_mask(check_mask(m, x), threshold)
    return m, target_class(clf, x, target)


def sufficiency(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *, fill="zero",
                mean=None, threshold: float = THRESHOLD) -> torch.Tensor:
    """M1 ↑. ``1[argmax f(e) = y*]`` with ``e = m ⊙ x + (1 - m) ⊙ fill``. Returns 0/1 floats ``(B,)``."""
    m, y = _prepare(clf, x, m, target, threshold)
    e = apply_mask(x, m, get_fill(x, fill, mean))
    return (probabilities(clf, e).argmax(-1) == y).float()


def confidence_change(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *, fill="zero",
                      mean=None, threshold: float = THRESHOLD) -> torch.Tensor:
    """M1 ↑ (second number). ``p(y*|e) - p(y*|x)`` with ``e = m ⊙ x + (1 - m) ⊙ fill``; in [-1, 1].

    Positive when the explanation is more convincing than the whole image (the paper reports this often).
    """
    m, y = _prepare(clf, x, m, target, threshold)
    e = apply_mask(x, m, get_fill(x, fill, mean))
    p = probabilities(clf, torch.cat([x, e]))
    return prob_of(p[len(x):], y) - prob_of(p[:len(x)], y)


def robustness(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *,
               kinds: tuple[str, ...] = ROBUSTNESS_KINDS, backgrounds: torch.Tensor | None = None,
               mean=None, seed: int = 0, threshold: float = THRESHOLD) -> torch.Tensor:
    """M2 ↑. ``(1/K) Σ_k 1[argmax f(m ⊙ x + (1 - m) ⊙ r_k) = y*]`` over K backgrounds; in [0, 1].

    The backgrounds are ``backgrounds (K, B, C, H, W)`` when given (e.g. other images of the dataset),
    else one fresh draw per entry of ``kinds`` from ``fill.random_backgrounds`` with a local generator seeded
    by ``seed``, so the caller's global random state is left alone (repeat an entry, e.g. ``("gaussian",) * 5``,
    to draw more of that kind). ``"shuffle"`` uses the other images of the batch. ``mean`` is the dataset mean
    colour for the ``"mean"``/``"gaussian"`` kinds.
    """
    m, y = _prepare(clf, x, m, target, threshold)
    if backgrounds is None:
        backgrounds = random_backgrounds(x, kinds, mean=mean, generator=torch.Generator().manual_seed(seed))
    if backgrounds.dim() != 5 or backgrounds.shape[1:] != x.shape:
        raise ValueError(f"backgrounds must have shape (K, *{tuple(x.shape)}), got {tuple(backgrounds.shape)}")
    e = apply_mask(x.unsqueeze(0), m.unsqueeze(0), backgrounds.to(x))   # (K, B, C, H, W)
    kept = probabilities(clf, e.flatten(0, 1)).argmax(-1).view(len(backgrounds), -1) == y
    return kept.float().mean(0)


def necessity(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *, fill="zero",
              mean=None, threshold: float = THRESHOLD) -> torch.Tensor:
    """M3 ↑. ``1[argmax f(x_comp) ≠ y*]`` with ``x_comp = (1 - m) ⊙ x + m ⊙ fill``. Returns 0/1 ``(B,)``.

    An empty mask removes nothing, so it scores 0 (unless the model already disagrees with ``target``).
    """
    m, y = _prepare(clf, x, m, target, threshold)
    x_comp = remove_mask(x, m, get_fill(x, fill, mean))
    return (probabilities(clf, x_comp).argmax(-1) != y).float()


def necessity_drop(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, target=None, *, fill="zero",
                   mean=None, threshold: float = THRESHOLD) -> torch.Tensor:
    """M3 ↑ (second number). ``p(y*|x) - p(y*|x_comp)``, ``x_comp = (1 - m) ⊙ x + m ⊙ fill``; in [-1, 1]."""
    m, y = _prepare(clf, x, m, target, threshold)
    x_comp = remove_mask(x, m, get_fill(x, fill, mean))
    p = probabilities(clf, torch.cat([x, x_comp]))
    return prob_of(p[:len(x)], y) - prob_of(p[len(x):], y)
