"""The methods a benchmark compares, each behind one call that returns masks, scores and its wall-clock cost.

* ``actmatch``: :func:`actmatch_lite.explain` (the paper's per-image regime) with the suite's preset;
* ``actmatch-amortized``: the shipped amortized mask network (:mod:`actmatch_lite.method.amortized`), one forward pass,
  at its OWN area (it is another way to run our method, not a baseline held to our area);
* every entry of :data:`actmatch_lite.evaluation.baselines.BASELINES`, held to the SAME AREA as the ``actmatch`` hard mask:
  per image the top ``k`` pixels of its scores, ``k`` = the pixels our mask keeps. A baseline that takes the target
  area as an input (an ``area`` keyword, detected with ``inspect.signature``: extremal perturbation) is also given
  ``area = k / (H·W)`` per image, so it optimises for that area before being cut to exactly ``k`` pixels.

A method that cannot run here (a missing optional file or module) raises :class:`Skipped` with the reason, so a
table can say why a row is empty instead of crashing.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from actmatch_lite.evaluation.baselines import BASELINES, masks_at_area, with_area
from actmatch_lite.method.config import ExplainConfig, get_preset
from actmatch_lite.method.explainer import Explanation, explain
from actmatch_lite.method.fill import make_fill
from actmatch_lite.method.instances import MIN_PROB, explain_instances, search_config
from actmatch_lite.models import load_amortized
from actmatch_lite.spec import LoadedModel

ACTMATCH, AMORTIZED = "actmatch", "actmatch-amortized"


def all_methods(suite) -> list[str]:
    """The methods a suite compares: ``actmatch``, the amortized network where the suite has one, every baseline."""
    return [ACTMATCH, *([AMORTIZED] if suite.amortized else []), *BASELINES]


def explainer_config(lm, steps: int | None = None, preset: str | None = None) -> ExplainConfig:
    """The preset ``preset`` (default: the model's); ``steps`` (when given) replaces its number of steps."""
    cfg = get_preset(preset or lm.preset)
    return dataclasses.replace(cfg, steps=steps) if steps is not None else cfg


class Skipped(RuntimeError):
    """A method that cannot run on this machine; the message says why (it becomes the table's note)."""


@dataclass(frozen=True)
class MethodOutput:
    """``scores (B, 1, H, W)`` (soft mask or attribution: ranks pixels), ``mask (B, 1, H, W)`` bool, ``seconds``
    for all B images, ``instances`` (multi-instance suites: per image ``(N_b, 1, H, W)`` bool) and ``batch``: the
    images per call the time was measured with."""

    scores: torch.Tensor
    mask: torch.Tensor
    seconds: float
    batch: int
    instances: tuple[torch.Tensor, ...] | None = None


def run_actmatch(lm: LoadedModel, x: torch.Tensor, cfg: ExplainConfig, seed: int, batch: int,
                 progress: bool = False, target: torch.Tensor | None = None) -> tuple[MethodOutput, torch.Tensor]:
    """Explain ``x`` in chunks of ``batch``; image ``i`` uses explainer seed ``seed + i`` whatever the chunking.

    ``target (B,)``: the classes to explain (default: the predicted ones). Returns the output and ``y* (B,)``.
    """
    outs: list[Explanation] = []
    start = time.perf_counter()
    for lo in range(0, len(x), batch):
        y = None if target is None else target[lo:lo + batch]
        outs.append(explain(lm, x[lo:lo + batch], config=cfg, target=y, seed=seed + lo, progress=progress))
    seconds = time.perf_counter() - start
    out = MethodOutput(torch.cat([o.soft_mask for o in outs]), torch.cat([o.mask for o in outs]), seconds,
                       min(batch, len(x)))
    return out, torch.cat([o.target for o in outs])


def run_actmatch_instances(lm: LoadedModel, x: torch.Tensor, cfg: ExplainConfig, seed: int,
                           max_instances: int, min_prob: float = MIN_PROB) -> tuple[MethodOutput, torch.Tensor]:
    """Multi-instance ``actmatch`` (:func:`actmatch_lite.method.instances.explain_instances`), one image at a time.

    The first explanation of each image is the plain per-image explanation of the whole image (nothing is
    excluded yet): it is the mask the single-mask metrics and the baselines' areas use. Every round uses
    :func:`~actmatch_lite.method.instances.search_config` of ``cfg`` (necessity off). ``seconds`` covers every
    round of the procedure.
    """
    cfg = search_config(cfg)
    first: dict[int, Explanation] = {}
    current = [0]   # the image being explained: explain_fn records its first explanation

    def explain_fn(xi, target, s):
        e = explain(lm, xi, config=cfg, target=target, seed=s)
        first.setdefault(current[0], e)
        return e

    masks, scores, sets, targets = [], [], [], []
    start = time.perf_counter()
    for i in range(len(x)):
        current[0] = i
        res = explain_instances(lm, x[i:i + 1], max_instances=max_instances, config=cfg, seed=seed + 100 * i,
                                min_prob=min_prob, explain_fn=explain_fn)
        sets.append(res.masks[0])
        e = first.get(i)
        if e is None:   # the procedure stopped before explaining (the image does not support its class)
            e = explain(lm, x[i:i + 1], config=cfg, seed=seed + 100 * i)
        masks.append(e.mask), scores.append(e.soft_mask), targets.append(e.target)
    seconds = time.perf_counter() - start
    return MethodOutput(torch.cat(scores), torch.cat(masks), seconds, 1, tuple(sets)), torch.cat(targets)


def load_amortized_explainer(lm: LoadedModel):
    """The shipped amortized explainer for ``lm``, or :class:`Skipped` saying what is missing."""
    try:
        return load_amortized(lm)
    except (FileNotFoundError, RuntimeError, ValueError) as err:   # missing file, checksum, wrong model
        first_sentence = str(err).split(". ")[0]
        raise Skipped(f"no shipped amortized explainer for {lm.name} ({first_sentence})") from err


def run_amortized(amz, x: torch.Tensor, batch: int) -> MethodOutput:
    """One forward pass of the amortized mask network per chunk of ``batch`` images (no refinement)."""
    start = time.perf_counter()
    outs = [amz.explain(x[lo:lo + batch]) for lo in range(0, len(x), batch)]
    seconds = time.perf_counter() - start
    return MethodOutput(torch.cat([o.soft_mask for o in outs]), torch.cat([o.mask for o in outs]), seconds,
                        min(batch, len(x)))


def run_baseline(name: str, lm: LoadedModel, x: torch.Tensor, y: torch.Tensor, k: torch.Tensor, *, seed: int,
                 fill: str | float, layer: str, options: dict | None = None) -> MethodOutput:
    """Baseline ``name`` explaining ``y`` on the whole batch, held to ``k (B,)`` pixels per image.

    The baseline perturbs with the same fill image as the explainer (the dataset mean colour for ``"mean"``),
    so every method is asked the same question. A baseline with an ``area`` keyword gets ``area = k / (H·W)``
    per image, unless ``options`` set ``area`` (:func:`~actmatch_lite.evaluation.baselines.with_area`).
    """
    fill_img = make_fill(x, fill, mean=lm.mean)
    options = with_area(name, options, k, x.shape[-2:])
    start = time.perf_counter()
    scores = BASELINES[name](lm.clf, x, y, layer=layer, seed=seed, fill=fill_img, **options)
    seconds = time.perf_counter() - start
    return MethodOutput(scores.detach(), masks_at_area(scores, k), seconds, len(x))
