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


from actmatch_lite.evaluation import report, scoring
from actmatch_lite.evaluation.baselines import BASELINES
from actmatch_lite.evaluation.methods import (ACTMATCH, AMORTIZED, Skipped, all_methods, explainer_config,
                                              load_amortized_explainer, run_actmatch, run_actmatch_instances,
                                              run_amortized, run_baseline)
from actmatch_lite.evaluation.suites import DEFAULT_SEEDS, Suite, get_suite, load_suite_data
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
             batch: int | None = None, time_b1: bool = True, progress: bool = True) -> tuple[dict[str, dict], str]:
    """``({method: {metric: mean over this seed's images}}, data source)`` for one data seed."""
    data = load_suite_data(suite, n, seed)
    x, batch = data.x, batch or suite.batch
    opts = {"fill": cfg.fill, "seed": seed, "gt": data.gt, "instances": data.instances,
            "curve_fills": suite.curve_fills, "patch": suite.patch}
    bar.set_description(f"seed {seed}: {ACTMATCH}")
    if suite.instances:
        ours, y = run_actmatch_instances(lm, x, cfg, seed, MAX_INSTANCES)
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
        values = scoring.image_means(scoring.score(lm, x, res, y, **opts))
        values["seconds_per_image"] = res.seconds / len(x)
        if time_b1 and res.batch > 1:
            values["seconds_per_image_b1"] = _time_one(one, x)
        elif res.batch == 1:
            values["seconds_per_image_b1"] = values["seconds_per_image"]
        out[name] = values
        bar.update()
    return out, data.source


def run_bench(suite_name: str, n: int | None = None, seeds=DEFAULT_SEEDS, methods=None, steps: int | None = None,
              batch: int | None = None, time_b1: bool = True, progress: bool = True, preset: str | None = None) -> dict:
    """The whole benchmark of one suite; returns the JSON-ready result (shape in :mod:`actmatch_lite.evaluation.report`).

    ``preset``: the explainer's preset (default: the model's). The baselines are held to its masks' area; the
    shipped amortized explainer, trained with the model's preset, is then skipped."""
    suite = get_suite(suite_name)
    n = n or suite.default_n
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
    per_seed: dict[str, list] = {m: [] for m in active}
    with progress_bar(total=len(seeds) * len(active), desc="bench", disable=not progress) as bar:
        for seed in seeds:
            values, source = run_seed(suite, lm, cfg, seed, n, active, bar, amz, batch, time_b1, progress)
            for name in active:
                per_seed[name].append(values[name])
    result = {"suite": suite.name, "n": n, "seeds": list(seeds), "machine": report.machine(), "model": lm.name,
              "data": f"{suite.data}; source: {source}", "fill": cfg.fill, "preset": preset,
              "config": dataclasses.asdict(cfg), "batch": batch or suite.batch,
              "notes": notes, "methods": {}}
    for name in methods:
        if name in skipped:
            result["methods"][name] = {"skipped": skipped[name]}
        else:
            result["methods"][name] = report.aggregate(per_seed[name])
    return result


def format_result(result: dict) -> str:
    """The headline table, the table of further metrics, the footer and the notes, as markdown."""
    k = len(result["seeds"])
    parts = [report.markdown_table(result["methods"], HEADLINE, k), "",
             report.markdown_table(result["methods"], EXTRA, k), "", report.footer(result)]
    parts += [f"Note: {note}." for note in result.get("notes", [])]
    return "\n".join(parts)
