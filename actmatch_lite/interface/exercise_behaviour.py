"""The two behaviour-graded exercises: graded by what the answer does, not by equality with a library function.

* ``area_weight``: a λ_area with which the ``shapes`` preset keeps the top-1 label on 8 fixed images, mean area under
  ``AREA_LIMIT``;
* ``vacuous_sufficiency``: a mask and a class for which sufficiency holds only because the fill alone is already
  classified that class.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import torch
from torch import nn

from actmatch_lite.data import make_shapes
from actmatch_lite.method.config import get_preset
from actmatch_lite.method.explainer import explain
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.models import load_model

AREA_WEIGHT_SEED = 4242  # the area_weight images: a shapes seed used for nothing else (no training, tuning, bench)
AREA_WEIGHT_IMAGES = 8
AREA_LIMIT = 0.10        # area_weight passes under this mean area


@functools.lru_cache(maxsize=32)
def area_weight_outcome(lam: float) -> tuple[int, float]:
    """(images whose top-1 label is kept, mean hard-mask area) of the shapes preset with ``lambda_area=lam`` on
    ``make_shapes(8, seed=AREA_WEIGHT_SEED)``, seed 0, on the CPU with one thread (bit for bit repeatable)."""
    model = load_model("shapes-cnn", device="cpu")
    x = make_shapes(AREA_WEIGHT_IMAGES, seed=AREA_WEIGHT_SEED).x
    cfg = dataclasses.replace(get_preset("shapes"), lambda_area=lam)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        e = explain(model, x, config=cfg, seed=0, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return int(e.label_kept.sum()), float(e.area.mean())


def grade_area_weight(_args: tuple, lam) -> str | None:
    """The verdict on a λ_area: every image keeps its label, and the mean area is under ``AREA_LIMIT``."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        return f"answer a number λ_area >= 0 (such as 10.0), not {lam!r}."
    kept, area = area_weight_outcome(float(lam))
    problems = []
    if kept < AREA_WEIGHT_IMAGES:
        problems.append(f"the label is lost on {AREA_WEIGHT_IMAGES - kept} of {AREA_WEIGHT_IMAGES} images (all "
                        f"must keep it)")
    if area >= AREA_LIMIT:
        problems.append(f"the mean area is {area:.1%}, {area - AREA_LIMIT:.1%} above the {AREA_LIMIT:.0%} limit")
    if not problems:
        return None
    return f"with λ_area = {lam:g}, " + " and ".join(problems) + "."


def vacuous_sufficiency(clf: nn.Module, x: torch.Tensor, fill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for ``vacuous_sufficiency``: the empty mask (e = fill) and the class of the fill alone."""
    with torch.no_grad():
        y = clf(fill).argmax(1)
    return torch.zeros(len(x), 1, *x.shape[-2:], dtype=torch.bool), y


def grade_vacuous(args: tuple, answer) -> str | None:
    """Sufficiency holds for ``(m, y)`` on every image, and is vacuous there: the fill alone is classified ``y``."""
    clf, x, fill = args
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"return a pair (m, y), got a {type(answer).__name__}."
    m, y = answer
    shape = (len(x), 1, *x.shape[-2:])
    if not isinstance(m, torch.Tensor) or tuple(m.shape) != shape:
        return f"m must be a tensor of shape {shape}, got {tuple(m.shape) if isinstance(m, torch.Tensor) else m!r}."
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (len(x),) or y.dtype.is_floating_point:
        return f"y must be an integer tensor of shape ({len(x)},), one class per image."
    m = m.detach().float()
    if not bool(((m == 0) | (m == 1)).all()):
        return "m must be a hard mask: every value 0 or 1."
    with torch.no_grad():
        y_e, y_fill = clf(apply_mask(x, m, fill)).argmax(1), clf(fill).argmax(1)
    y = y.detach().long()
    for i in range(len(x)):
        if y_e[i] != y[i]:
            return (f"image {i}: e = m ⊙ x + (1 - m) ⊙ fill is classified {int(y_e[i])}, not your y = {int(y[i])}: "
                    "sufficiency does not even hold.")
    for i in range(len(x)):
        if y_fill[i] != y[i]:
            return (f"image {i}: sufficiency holds, but the fill alone is classified {int(y_fill[i])}, not "
                    f"{int(y[i])}: it is not vacuous (the mask's pixels did the work).")
    return None
