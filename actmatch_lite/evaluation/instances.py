"""M10 of the multi-instance procedure on generated canvases: instance recall and purity against the true objects."""
from __future__ import annotations

from actmatch_lite.data import make_canvases
from actmatch_lite.evaluation.metrics import instance_purity, instance_recall
from actmatch_lite.method.instances import explain_instances
from actmatch_lite.models import load_model
from actmatch_lite.models.amortized import load_amortized


def evaluate_instances(n: int = 48, seed: int = 2025, *, amortized: bool = False, **options) -> dict:
    """M10 on ``make_canvases(n, seed, n_instances=(2, 3))`` with ``shapes-cnn``: mean instance recall and purity,
    mean instances found per canvas and seconds per canvas. ``amortized``: explain with the shipped amortized
    network (one forward pass per round) instead of the per-image regime. ``options`` go to
    :func:`~actmatch_lite.method.instances.explain_instances`."""
    model = load_model("shapes-cnn", device="cpu")
    c = make_canvases(n, seed, n_instances=(2, 3))
    if amortized:
        amz = load_amortized(model)
        options["explain_fn"] = lambda xi, target, s: amz.explain(xi, target=target, seed=s)
    res = explain_instances(model, c.x, **options)
    gt = [c.instance_masks[b][c.labels[b] >= 0] for b in range(n)]
    recall, purity = instance_recall(list(res.masks), gt), instance_purity(list(res.masks), gt)
    return {"n": n, "seed": seed, "regime": "amortized" if amortized else "per-image",
            "recall": float(recall.nanmean()), "purity": float(purity.nanmean()),
            "found_per_canvas": float(res.counts.float().mean()),
            "instances_per_canvas": float((c.labels >= 0).sum(1).float().mean()),
            "seconds_per_canvas": res.seconds / n}
