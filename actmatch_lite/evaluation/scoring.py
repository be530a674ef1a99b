"""Score one method's masks with the evaluation protocol's metrics: one value per image, per metric.

``score(...)`` returns ``{metric: (B,) tensor}`` (NaN where a metric is undefined for an image); the benchmark
averages over images per seed, then reports mean ± std over seeds. Every metric reads the classifier's
probabilities and removes pixels with ``fill`` (the explainer's fill, the same for every method), except:
robustness (fresh random backgrounds and other images of the batch) and the ``*_blur`` curves (blur fill).
Names and the library metric each comes from (for its direction) are in :data:`SOURCE`.
"""
from __future__ import annotations

import torch

from actmatch_lite.evaluation import metrics as M
from actmatch_lite.evaluation.methods import MethodOutput
from actmatch_lite.spec import LoadedModel

# table name -> the library metric whose DIRECTION it shares
SOURCE = {
    "sufficiency": "sufficiency", "confidence_change": "confidence_change", "robustness": "robustness",
    "necessity": "necessity", "necessity_drop": "necessity_drop", "area": "area", "components": "components",
    "one_minimality": "one_minimality", "iou": "iou", "precision": "precision", "pointing": "pointing_game",
    "deletion_auc": "deletion_auc", "insertion_auc": "insertion_auc", "instance_recall": "instance_recall",
    "instance_purity": "instance_purity", "seconds_per_image": "time_per_image", "crispness": "crispness",
    "activation_fidelity": "activation_fidelity", "collapsed": "area", "area_random": "area",
    "sanity_iou": "sanity_iou", "sanity_spearman": "sanity_spearman", "seed_stability": "seed_stability",
    "shift_stability": "shift_stability",
}

VARIANT_SUFFIXES = ("_blur", "_zero", "_mean", "_b1")   # the same metric under another fill or batch size


def direction(name: str) -> str:
    """``"higher"`` or ``"lower"``: is a larger value of table metric ``name`` better?"""
    base = name
    for suffix in VARIANT_SUFFIXES:
        base = base.removesuffix(suffix)
    return M.DIRECTION[SOURCE.get(base, base)]


def arrow(name: str) -> str:
    return M.ARROWS[direction(name)]


def score(lm: LoadedModel, x: torch.Tensor, out: MethodOutput, y: torch.Tensor, *, fill, seed: int,
          gt: torch.Tensor | None = None, instances=None, curve_fills=("zero", "blur"),
          patch: int = M.minimality.PATCH) -> dict[str, torch.Tensor]:
    """Per-image values of every metric that applies to this suite (see the module docstring)."""
    clf, m, s = lm.clf, out.mask, out.scores
    kw = {"fill": fill, "mean": lm.mean}
    r = {
        "sufficiency": M.sufficiency(clf, x, m, y, **kw),
        "confidence_change": M.confidence_change(clf, x, m, y, **kw),
        "robustness": M.robustness(clf, x, m, y, mean=lm.mean, seed=seed),
        "necessity": M.necessity(clf, x, m, y, **kw),
        "necessity_drop": M.necessity_drop(clf, x, m, y, **kw),
        "area": M.area(m),
        "components": M.components(m),
        "one_minimality": M.one_minimality(clf, x, m, y, patch=patch, **kw),
    }
    if gt is not None:
        r["iou"] = M.iou(m, gt)
        r["precision"] = M.precision(m, gt)
        r["pointing"] = M.pointing_game(s, gt)
    for i, curve_fill in enumerate(curve_fills):
        suffix = "" if i == 0 else f"_{curve_fill}"
        r[f"deletion_auc{suffix}"] = M.deletion_auc(clf, x, s, y, fill=curve_fill, mean=lm.mean)
        r[f"insertion_auc{suffix}"] = M.insertion_auc(clf, x, s, y, fill=curve_fill, mean=lm.mean)
    if instances is not None:
        # a method without a multi-instance procedure offers its one mask as its only explanation
        sets = out.instances if out.instances is not None else tuple(mi[None] for mi in m)
        r["instance_recall"] = M.instance_recall(sets, instances)
        r["instance_purity"] = M.instance_purity(sets, instances)
    return r


def image_means(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{metric: mean over the images' finite values}`` (NaN when none is finite)."""
    return {k: M.summarise(v).mean for k, v in values.items()}
