"""``python -m actmatch_lite bench sanity SUITE``: M12 sanity (model randomisation) and M13 stability.

For each data seed and method, four sets of masks for the same images and the same class ``y*`` (the trained
model's prediction):

* trained classifier, seed ``s``: the reference ``m`` (baselines at the area of ``actmatch``'s mask, ``k`` per image);
* the same architecture with freshly initialised weights (Adebayo et al. 2018): ``sanity_iou`` (hard masks) and
  ``sanity_spearman`` (soft masks / scores) against the reference, both ↓: an explanation that does not change
  when the model's knowledge is destroyed explains the image, not the model;
* seed ``s + SEED_OFFSET``: ``seed_stability`` ↑ (deterministic methods score 1 by construction);
* the images shifted by 2 px down and right: ``shift_stability`` ↑ (IoU on the pixels both views share).

The amortized mask network reads only the image, so its masks cannot depend on the classifier's weights without
retraining it for the randomised model: its sanity entries are left out (a note says so), its stability is kept.
"""
from __future__ import annotations

import dataclasses


from actmatch_lite.evaluation import metrics as M
from actmatch_lite.evaluation import report
from actmatch_lite.evaluation.methods import (ACTMATCH, AMORTIZED, Skipped, all_methods, explainer_config,
                                              load_amortized_explainer, run_actmatch, run_amortized, run_baseline)
from actmatch_lite.evaluation.suites import DEFAULT_SEEDS, get_suite, load_suite_data
from actmatch_lite.models import load_model
from actmatch_lite.progress import progress_bar
from actmatch_lite.seeding import seed_everything

SEED_OFFSET = 10_007   # second explainer seed; larger than any batch, so no image reuses a seed of the first run
COLUMNS = ("sanity_iou", "sanity_spearman", "seed_stability", "shift_stability", "area", "area_random")


def randomised(lm, seed: int):
    """``lm``'s architecture with fresh random weights (seeded), keeping the trained model's mean colour (fill)."""
    seed_everything(seed)
    return dataclasses.replace(load_model(lm.name, device="cpu", pretrained=False), mean=lm.mean)


def _masks(name, lm, x, y, k, cfg, seed, suite, batch, amz):
    """``(scores, hard mask)`` of method ``name`` for ``lm`` on ``x`` explaining ``y``."""
    if name == ACTMATCH:
        out, _ = run_actmatch(lm, x, cfg, seed, batch, target=y)
    elif name == AMORTIZED:
        out = run_amortized(amz, x, batch)
    else:
        out = run_baseline(name, lm, x, y, k, seed=seed, fill=cfg.fill, layer=suite.gradcam_layer,
                           options=suite.baseline_options.get(name))
    return out.scores, out.mask


def sanity_seed(suite, lm, cfg, seed: int, n: int, methods, bar, amz=None) -> dict[str, dict[str, float]]:
    """``{method: {metric: mean over images}}`` for one data seed."""
    x = load_suite_data(suite, n, seed).x
    batch = suite.batch
    ours, y = run_actmatch(lm, x, cfg, seed, batch)
    k = ours.mask.flatten(1).sum(1)
    lm_random = randomised(lm, seed)
    x_shift = M.shift_images(x, fill=cfg.fill, mean=lm.mean)
    out = {}
    for name in methods:
        bar.set_description(f"seed {seed}: {name}")
        s, m = (ours.scores, ours.mask) if name == ACTMATCH else _masks(name, lm, x, y, k, cfg, seed, suite, batch, amz)
        _, m_seed = _masks(name, lm, x, y, k, cfg, seed + SEED_OFFSET, suite, batch, amz)
        _, m_shift = _masks(name, lm, x_shift, y, k, cfg, seed, suite, batch, amz)
        values = {"seed_stability": M.seed_stability([m, m_seed]), "shift_stability": M.shift_iou(m, m_shift),
                  "area": M.area(m)}
        if name != AMORTIZED:
            s_r, m_r = _masks(name, lm_random, x, y, k, cfg, seed, suite, batch, amz)
            values.update(sanity_iou=M.sanity_iou(m, m_r), sanity_spearman=M.sanity_spearman(s, s_r),
                          area_random=M.area(m_r))
        out[name] = {key: M.summarise(v).mean for key, v in values.items()}
        bar.update()
    return out


def run_sanity(suite_name: str, n: int | None = None, seeds=DEFAULT_SEEDS, methods=None, steps: int | None = None,
               progress: bool = True) -> dict:
    """M12 and M13 for every method of a suite (default: half the suite's images per seed)."""
    suite = get_suite(suite_name)
    if suite.instances:
        raise ValueError("bench sanity runs on single-object suites (shapes, fmnist, photos)")
    n = n or max(1, suite.default_n // 2)
    methods = list(methods or all_methods(suite))
    lm = load_model(suite.model, device="cpu")
    cfg = explainer_config(lm, steps)
    notes = [f"seed stability compares explainer/baseline seeds s and s + {SEED_OFFSET}; shift stability a 2-px "
             "shift down and right; baselines are held to the area of actmatch's mask on the trained model"]
    amz, skipped = None, {}
    if AMORTIZED in methods:
        try:
            amz = load_amortized_explainer(lm)
            notes.append("actmatch-amortized has no sanity entry: its mask network reads only the image, so "
                         "testing it against a randomised classifier needs a network retrained for that classifier")
        except Skipped as err:
            skipped[AMORTIZED] = {"skipped": str(err)}
    unknown = [m for m in methods if m not in all_methods(suite)]
    if unknown:
        raise ValueError(f"unknown methods {unknown} for suite {suite_name}; choose from {all_methods(suite)}")
    active = [m for m in methods if m not in skipped]
    per_seed = {m: [] for m in active}
    with progress_bar(total=len(seeds) * len(active), desc="sanity", disable=not progress) as bar:
        for seed in seeds:
            for name, values in sanity_seed(suite, lm, cfg, seed, n, active, bar, amz).items():
                per_seed[name].append(values)
    result_methods = {name: skipped.get(name) or report.aggregate(per_seed[name]) for name in methods}
    return {"suite": suite.name, "mode": "sanity", "n": n, "seeds": list(seeds), "machine": report.machine(),
            "model": lm.name, "data": suite.data, "fill": cfg.fill, "preset": lm.preset,
            "config": dataclasses.asdict(cfg), "notes": notes, "methods": result_methods}


def format_sanity(result: dict) -> str:
    parts = [report.markdown_table(result["methods"], COLUMNS, len(result["seeds"])), "", report.footer(result)]
    return "\n".join(parts + [f"Note: {note}." for note in result["notes"]])
