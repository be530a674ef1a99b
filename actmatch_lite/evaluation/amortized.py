"""The amortized explainer against the per-image regime on held-out images (evaluation, not the method).

Three regimes on the same images: per-image :func:`actmatch_lite.explain`, the amortized network's one forward pass,
and that pass followed by ``refine_steps`` per-image steps; for each, seconds per image, sufficiency (M1, higher is
better), area (lower is better) and, where ground truth exists (shapes), IoU with it (higher is better).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from actmatch_lite.data import load_fmnist_subset, make_shapes
from actmatch_lite.evaluation import metrics
from actmatch_lite.method.amortized.explainer import AmortizedExplainer
from actmatch_lite.method.explainer import explain
from actmatch_lite.models import load_model
from actmatch_lite.models.amortized import load_amortized, recipe, recipe_threads
from actmatch_lite.progress import progress_bar

EVAL_SEED = 777          # held-out shapes; fmnist is evaluated on the shipped test subset


def held_out(name: str, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Evaluation images and ground-truth masks (None for Fashion-MNIST): never seen in training."""
    if name == "shapes-cnn":
        d = make_shapes(n, seed=EVAL_SEED)
        return d.x, d.masks
    return load_fmnist_subset()[0][:n], None


def _score(model, regime: str, x, gt, outs, seconds: float) -> dict:
    """One row of :func:`compare`: the regime's explanations ``outs`` of ``x``, scored."""
    m, y = torch.cat([o.mask for o in outs]), torch.cat([o.target for o in outs])
    cfg = outs[0].config
    row = {"regime": regime, "n": len(x), "s_per_image": seconds,
           "sufficiency": float(metrics.sufficiency(model.clf, x, m, y, fill=cfg.fill, mean=model.mean).mean()),
           "area": float(m.flatten(1).float().mean(1).mean())}
    if gt is not None:
        row["iou"] = float(metrics.iou(m, gt).mean())
    return row


def compare(name: str, n: int = 256, chunk: int = 64, refine_steps: int = 20, file: Path | None = None) -> list[dict]:
    """Per-image vs amortized (and amortized + refinement) on ``n`` held-out images: one dict per regime.

    ``file``: an amortized explainer saved by :meth:`AmortizedExplainer.save` (default: the shipped one). The
    amortized row also gets the milliseconds per image, in batches of ``chunk``, of the mask network alone and of
    a whole explanation."""
    model = load_model(name, device="cpu")
    amz = AmortizedExplainer.load(file, model) if file else load_amortized(model)
    x, gt = held_out(name, n)
    runs = {"per-image": lambda xb: explain(model, xb, seed=0, progress=False),
            "amortized": lambda xb: amz.explain(xb),
            f"amortized + {refine_steps} refine": lambda xb: amz.explain(xb, refine_steps=refine_steps)}
    rows = []
    for regime, run in runs.items():
        start, outs = time.perf_counter(), [run(xb) for xb in progress_bar(x.split(chunk), desc=regime)]
        rows.append(_score(model, regime, x, gt, outs, (time.perf_counter() - start) / len(x)))
    mask_only = metrics.time_per_image(lambda xb: amz.mask_net(xb), x[:chunk])
    full = metrics.time_per_image(lambda xb: amz.explain(xb), x[:chunk])
    rows[1]["ms_per_image_b64_mask_only"], rows[1]["ms_per_image_b64_explain"] = 1e3 * mask_only, 1e3 * full
    return rows


def evaluate(name: str, n: int = 256, file: Path | None = None) -> list[dict]:
    """:func:`compare` with the recipe's thread count, so timings compare with those of the shipped results."""
    with recipe_threads(recipe(name)):
        return compare(name, n, file=file)
