"""``python -m actmatch_lite bench SUITE``: activation matching against every baseline, at equal area, over seeds.

    python -m actmatch_lite bench shapes --n 64 --seeds 101 102 103 --json benchmarks/shapes.json
    python -m actmatch_lite bench photos --methods actmatch gradcam rise
    python -m actmatch_lite bench sanity shapes          # M12 sanity and M13 stability (actmatch_lite.evaluation.sanity)

For each data seed: draw the suite's images, explain them with ``actmatch`` (the suite's preset, read when the
run starts; explainer seed = data seed), hold every baseline to the same number of pixels per image, run the
amortized explainer where one ships, and score every method (:mod:`actmatch_lite.evaluation.scoring`). A table entry is the
mean over a seed's images, then mean ± std over seeds. Cost (M14) is the wall-clock seconds per image of each
method in the same run, at the batch used (``seconds_per_image``) and for one image alone (``..._b1``), after one
untimed warm-up call on one image (as :func:`actmatch_lite.evaluation.metrics.time_per_image` does).
"""
from __future__ import annotations

import dataclasses
import time

import torch

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation import report, scoring
from actmatch_lite.evaluation.baselines import BASELINES
from actmatch_lite.evaluation.methods import (ACTMATCH, AMORTIZED, Skipped, all_methods, explainer_config,
                                              load_amortized_explainer, run_actmatch, run_actmatch_instances,
                                              run_amortized, run_baseline)
from actmatch_lite.evaluation.suites import (CONFIDENT, DEFAULT_SEEDS, Suite, SuiteData, get_suite, load_suite_data,
                                             photo_records)
from actmatch_lite.method.config import ExplainConfig, get_preset
from actmatch_lite.models import load_model
from actmatch_lite.progress import progress_bar

HEADLINE = ("sufficiency", "robustness", "necessity", "area", "iou", "pointing", "deletion_auc", "insertion_auc",
            "instance_recall", "instance_purity", "seconds_per_image")
EXTRA = ("confidence_change", "necessity_drop", "precision", "components", "one_minimality", "deletion_auc_blur",
         "insertion_auc_blur", "seconds_per_image_b1")
MAX_INSTANCES = 4   # canvases hold at most 3 instances: one spare round shows whether the procedure stops


def _time_one(fn, x) -> float:
    start = time.perf_counter()
    fn(x[:1])
    return time.perf_counter() - start


def run_seed(suite: Suite, lm, cfg: ExplainConfig, seed: int, n: int, methods: list[str], bar, amz=None,
             batch: int | None = None, time_b1: bool = True, progress: bool = True,
             subset: torch.Tensor | None = None, masks: dict | None = None,
             data: SuiteData | None = None) -> tuple[dict[str, dict], str]:
    """``({method: {metric: mean over this seed's images}}, data source)`` for one data seed.

    With ``subset (n,)`` bool, each method also gets ``"subset"``: the means over those images only, and
    ``actmatch`` gets ``"per_image"``: ``{metric: [value per image]}`` of its headline metrics. ``masks``, when
    given, receives ``{method: (n, 1, H, W) bool}``. ``data``: the images when they do not depend on the seed
    (the photos, loaded once by :func:`run_bench`); by default this seed's draw of the suite."""
    data = data or load_suite_data(suite, n, seed)
    x, batch = data.x, batch or suite.batch
    if masks is not None:
        masks["names"] = list(data.names)
    opts = {"fill": cfg.fill, "seed": seed, "gt": data.gt, "instances": data.instances,
            "curve_fills": suite.curve_fills, "patch": suite.patch}
    bar.set_description(f"seed {seed}: {ACTMATCH}")
    if suite.instances:
        ours, y = run_actmatch_instances(lm, x, cfg, seed, MAX_INSTANCES, suite.min_prob)
    else:
        ours, y = run_actmatch(lm, x, cfg, seed, batch, progress=progress)
    k = ours.mask.flatten(1).sum(1)
    runners = {ACTMATCH: (lambda: ours, lambda xb: run_actmatch(lm, xb, cfg, seed, 1))}
    if AMORTIZED in methods:
        runners[AMORTIZED] = (lambda: run_amortized(amz, x, batch), lambda xb: amz.explain(xb))
    for name in methods:
        if name in BASELINES:
            kw = {"seed": seed, "fill": cfg.fill, "layer": suite.gradcam_layer,
                  "options": suite.baseline_options.get(name)}
            runners[name] = (lambda name=name, kw=kw: run_baseline(name, lm, x, y, k, **kw),
                             lambda xb, name=name, kw=kw: run_baseline(name, lm, xb, y[:1], k[:1], **kw))
    out: dict[str, dict] = {}
    for name in methods:
        bar.set_description(f"seed {seed}: {name}")
        full, one = runners[name]
        if name != ACTMATCH:   # untimed warm-up (lazy initialisation, caches); negligible next to actmatch's own run
            one(x[:1])
        res = full()
        if masks is not None:
            masks[name] = res.mask.cpu()
        per_image = scoring.score(lm, x, res, y, **opts)
        values = scoring.image_means(per_image)
        if subset is not None:
            values["subset"] = scoring.image_means({k: v[subset] for k, v in per_image.items()}) if subset.any() else {}
        if name == ACTMATCH and subset is not None:
            values["per_image"] = {k: v.tolist() for k, v in per_image.items() if k in HEADLINE}
        values["seconds_per_image"] = res.seconds / len(x)
        if time_b1 and res.batch > 1:
            values["seconds_per_image_b1"] = _time_one(one, x)
        elif res.batch == 1:
            values["seconds_per_image_b1"] = values["seconds_per_image"]
        out[name] = values
        bar.update()
    return out, data.source


def run_bench(suite_name: str, n: int | None = None, seeds=DEFAULT_SEEDS, methods=None, steps: int | None = None,
              batch: int | None = None, time_b1: bool = True, progress: bool = True, preset: str | None = None,
              masks: dict | None = None, photos=None) -> dict:
    """The whole benchmark of one suite; returns the JSON-ready result (shape in :mod:`actmatch_lite.evaluation.report`).

    ``masks``, when given, receives every method's hard masks of the FIRST seed, ``{method: (n, 1, H, W) bool}``,
    and ``"names"``: the images' labels (``bench --masks FILE`` saves them; notebook 11 reads the photos').

    ``preset``: the explainer's preset (default: the model's). The baselines are held to its masks' area; the
    shipped amortized explainer, trained with the model's preset, is then skipped. ``photos``: the photos suite
    on these catalogue photos (by name) instead of its first ``n``."""
    suite = get_suite(suite_name)
    photos = tuple(photos) if photos else None
    if photos is not None and n is not None and n != len(photos):
        raise InputError(f"--n {n} and {len(photos)} named photos disagree; give one or the other")
    n = len(photos) if photos else n or suite.default_n
    methods = list(methods or all_methods(suite))
    unknown = [m for m in methods if m not in all_methods(suite)]
    if unknown:
        raise ValueError(f"unknown methods {unknown} for suite {suite_name}; choose from {all_methods(suite)}")
    if ACTMATCH not in methods:
        methods.insert(0, ACTMATCH)   # the baselines' area comes from our mask
    lm = load_model(suite.model, device="cpu")
    preset = preset or lm.preset
    cfg = explainer_config(lm, steps, preset)
    notes = ["baselines are held to the area of the actmatch hard mask (the same k pixels per image); "
             "actmatch-amortized keeps its own area"]
    if cfg.steps != get_preset(preset).steps:
        notes.append(f"explainer steps {cfg.steps} instead of the preset's {get_preset(preset).steps}")
    amz, skipped = None, {}
    if AMORTIZED in methods and preset != lm.preset:
        skipped[AMORTIZED] = f"the shipped amortized explainer was trained with preset {lm.preset!r}, not {preset!r}"
    elif AMORTIZED in methods:
        try:
            amz = load_amortized_explainer(lm)
        except Skipped as err:
            skipped[AMORTIZED] = str(err)
    if suite.instances:
        notes.append("instance metrics: actmatch uses explain_instances (explain, exclude, repeat; up to "
                     f"{MAX_INSTANCES} rounds); every other method offers its single mask, so its recall is at "
                     "most 1/N for N instances (here 1/3 to 1/2); actmatch's seconds cover every round of the procedure")
    active = [m for m in methods if m not in skipped]
    records = subset = data = None
    if suite.name == "photos":   # fixed photos: loaded once, and the model's top-1 and confidence once, for the
        data = load_suite_data(suite, n, seeds[0], photos)   # confident-only tables
        records = photo_records(lm, data.x, data.names)
        subset = torch.tensor([r["confident"] for r in records])
    per_seed: dict[str, list] = {m: [] for m in active}
    with progress_bar(total=len(seeds) * len(active), desc="bench", disable=not progress) as bar:
        for i, seed in enumerate(seeds):
            keep = masks if i == 0 else None
            values, source = run_seed(suite, lm, cfg, seed, n, active, bar, amz, batch, time_b1, progress, subset,
                                      keep, data)
            for name in active:
                per_seed[name].append(values[name])
    result = {"suite": suite.name, "n": n, "seeds": list(seeds), "machine": report.machine(), "model": lm.name,
              "data": f"{suite.data}; source: {source}", "fill": cfg.fill, "preset": preset,
              "config": dataclasses.asdict(cfg), "batch": batch or suite.batch,
              "notes": notes, "methods": {}}
    if records is not None:
        result["photos"] = records
        result["methods_confident"] = {}
        per_image = [v.pop("per_image") for v in per_seed[ACTMATCH]]
        for rec_i, rec in enumerate(records):   # actmatch per photo: mean over seeds
            rec["actmatch"] = {k: sum(p[k][rec_i] for p in per_image) / len(per_image) for k in per_image[0]}
    for name in methods:
        if name in skipped:
            result["methods"][name] = {"skipped": skipped[name]}
            if records is not None:
                result["methods_confident"][name] = {"skipped": skipped[name]}
            continue
        if records is not None:
            result["methods_confident"][name] = report.aggregate([v.pop("subset") for v in per_seed[name]])
        result["methods"][name] = report.aggregate(per_seed[name])
    return result


PHOTO_COLUMNS = ("sufficiency", "necessity", "area")


def photo_table(records: list[dict]) -> str:
    """One row per photo: the model's top-1, its probability, confident or not, and actmatch's values."""
    lines = ["| photo | top-1 | p | confident | " + " | ".join(f"{c} {scoring.arrow(c)}" for c in PHOTO_COLUMNS) + " |",
             "|---|---|---|---|" + "---|" * len(PHOTO_COLUMNS)]
    for r in records:
        ours = r.get("actmatch", {})
        lines.append(f"| {r['name']} | {r['class_name']} | {r['p']:.2f} | {'yes' if r['confident'] else 'no'} | "
                     + " | ".join(f"{ours.get(c, float('nan')):.3f}" for c in PHOTO_COLUMNS) + " |")
    return "\n".join(lines)


def format_result(result: dict) -> str:
    """The headline table, the table of further metrics, the footer and the notes, as markdown (photos: also the
    headline table over the confident photos and one row per photo)."""
    k = len(result["seeds"])
    parts = [report.markdown_table(result["methods"], HEADLINE, k), "",
             report.markdown_table(result["methods"], EXTRA, k), "", report.footer(result)]
    if "photos" in result:
        n_conf = sum(r["confident"] for r in result["photos"])
        parts += ["", f"Confident photos only (top-1 p >= {CONFIDENT}: {n_conf} of {result['n']}):", "",
                  report.markdown_table(result["methods_confident"], HEADLINE, k), "",
                  "Per photo (actmatch, mean over seeds):", "", photo_table(result["photos"]), ""]
    parts += [f"Note: {note}." for note in result.get("notes", [])]
    return "\n".join(parts)
