"""``python -m actmatch_lite ablate SUITE``: what each term of the objective is worth, and where the weights break.

    python -m actmatch_lite ablate shapes --n 32 --seeds 101 102 103 --json benchmarks/ablate_shapes.json

Every variant is ``dataclasses.replace`` of the suite's preset (read when the run starts) changing one thing
(:func:`ablation_variants`); the sweep scales ``λ_area`` and ``λ_tv`` by :data:`SWEEP_FACTORS` each
(:func:`sweep_variants`). Each variant explains the same images with the same seeds and is scored with ITS OWN
fill (sufficiency, necessity, activation fidelity), so a fill variant is judged on the question it was trained
for; robustness (random backgrounds) is fill-free and compares across fills. Masks with area < 0.2 % or > 95 %
count as collapsed; a variant is flagged ``collapsed`` when at least half its images collapsed and ``NaN``
when its loss became NaN or inf. Plots (seaborn) are written next to the JSON.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from actmatch_lite.evaluation import metrics as M
from actmatch_lite.evaluation import report
from actmatch_lite.evaluation.methods import explainer_config, run_actmatch
from actmatch_lite.evaluation.suites import DEFAULT_SEEDS, get_suite, load_suite_data
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.losses import default_distances
from actmatch_lite.models import load_model
from actmatch_lite.progress import progress_bar

SWEEP_FACTORS = (0.25, 1.0, 4.0, 16.0)   # × the preset's λ_area and λ_tv: a 4 × 4 grid around the preset
COLLAPSE_LOW, COLLAPSE_HIGH = 0.002, 0.95
COLLAPSE_SHARE = 0.5                     # flag a variant when at least this share of its images collapsed
FILLS = ("zero", "mean", "blur")
# images per seed: about 28 variants each explain them, on a shared 2-core CPU
ABLATE_N = {"shapes": 16, "fmnist": 16, "canvases": 4, "photos": 1}
COLUMNS = ("sufficiency", "robustness", "necessity", "area", "iou", "crispness", "components",
           "activation_fidelity", "collapsed", "seconds_per_image")


@dataclass(frozen=True)
class Variant:
    """A named configuration and the fields it changes relative to the preset."""

    name: str
    config: ExplainConfig
    changed: tuple[str, ...]


def _v(name: str, cfg: ExplainConfig, **changes) -> Variant:
    return Variant(name, dataclasses.replace(cfg, **changes), tuple(changes))


def ablation_variants(cfg: ExplainConfig, taps: tuple[str, ...], tap_weights: tuple[float, ...]) -> list[Variant]:
    """The evaluation protocol's ablations of ``cfg`` (``taps``/``tap_weights``: the model's defaults).

    * one tap: only the deepest tap, with the weight α and the distance it has in the full objective;
    * robustness (λ_rob, random backgrounds) and necessity (λ_nec): each switched off when the preset uses it,
      else switched on with weight λ_ce (all three are cross-entropy-like terms in logit units, so the masked-out
      objective weighs as much as the masked-in one, as Phang et al. 2020 compare them); when the preset uses
      neither, a variant with both on is added;
    * fills: each fill the preset does not use.
    """
    taps = cfg.taps or taps
    weights = cfg.tap_weights or tap_weights
    distances = cfg.distances or default_distances(len(taps))
    out = [Variant("full", cfg, ()),
           _v("no activation matching", cfg, lambda_act=0.0), _v("no KL", cfg, lambda_kl=0.0),
           _v("no CE", cfg, lambda_ce=0.0),
           _v("one tap", cfg, taps=taps[-1:], tap_weights=tuple(weights[-1:]), distances=tuple(distances[-1:])),
           _v("no area", cfg, lambda_area=0.0), _v("no binarisation", cfg, lambda_bin=0.0),
           _v("no TV", cfg, lambda_tv=0.0)]
    on = cfg.lambda_ce or 1.0
    out.append(_v("no robustness", cfg, lambda_rob=0.0) if cfg.lambda_rob else _v("with robustness", cfg, lambda_rob=on))
    out.append(_v("no necessity", cfg, lambda_nec=0.0) if cfg.lambda_nec else _v("with necessity", cfg, lambda_nec=on))
    if not cfg.lambda_rob and not cfg.lambda_nec:
        out.append(_v("with robustness + necessity", cfg, lambda_rob=on, lambda_nec=on))
    out += [_v(f"fill {fill}", cfg, fill=fill) for fill in FILLS if fill != cfg.fill]
    return out


def sweep_variants(cfg: ExplainConfig, factors=SWEEP_FACTORS) -> list[Variant]:
    """``λ_area × a`` and ``λ_tv × t`` for every pair of factors (the preset itself is the (1, 1) cell)."""
    return [_v(f"λ_area×{a:g} λ_tv×{t:g}", cfg, lambda_area=cfg.lambda_area * a, lambda_tv=cfg.lambda_tv * t)
            for a in factors for t in factors]


def collapsed(area: torch.Tensor) -> torch.Tensor:
    """``(B,)`` 1.0 where a mask keeps less than 0.2 % or more than 95 % of the pixels."""
    return ((area < COLLAPSE_LOW) | (area > COLLAPSE_HIGH)).float()


def flags(entry: dict) -> list[str]:
    """``["collapsed"]`` / ``["NaN"]`` for an aggregated variant entry (``{metric: {"mean", ...}}``)."""
    out = []
    if entry.get("collapsed", {}).get("mean", 0.0) >= COLLAPSE_SHARE:
        out.append("collapsed")
    if entry.get("nan", {}).get("mean", 0.0) > 0:
        out.append("NaN")
    return out


def score_variant(lm, x, gt, cfg: ExplainConfig, seed: int, batch: int) -> dict[str, float]:
    """Mean over images of each ablation metric for one variant and seed; ``{"nan": 1.0}`` if the loss blew up."""
    try:
        out, y = run_actmatch(lm, x, cfg, seed, batch)
    except FloatingPointError:
        return {"nan": 1.0}
    m, kw = out.mask, {"fill": cfg.fill, "mean": lm.mean}
    fid = M.activation_fidelity(lm.clf, x, m, lm.taps, **kw)
    values = {"sufficiency": M.sufficiency(lm.clf, x, m, y, **kw),
              "robustness": M.robustness(lm.clf, x, m, y, mean=lm.mean, seed=seed),
              "necessity": M.necessity(lm.clf, x, m, y, **kw), "area": M.area(m),
              "crispness": M.crispness(out.scores), "components": M.components(m),
              "activation_fidelity": torch.stack(list(fid.values())).mean(0), "collapsed": collapsed(M.area(m))}
    if gt is not None:
        values["iou"] = M.iou(m, gt)
    means = {k: M.summarise(v).mean for k, v in values.items()}
    return {**means, "seconds_per_image": out.seconds / len(x), "nan": 0.0}


def run_ablate(suite_name: str, n: int | None = None, seeds=DEFAULT_SEEDS, steps: int | None = None,
               ablations: bool = True, sweep: bool = True, factors=SWEEP_FACTORS, progress: bool = True) -> dict:
    """Every ablation and sweep variant on the suite's images; JSON-ready (one ``methods`` entry per variant)."""
    suite = get_suite(suite_name)
    n = n or ABLATE_N[suite.name]
    lm = load_model(suite.model, device="cpu")
    cfg = explainer_config(lm, steps)
    variants = (ablation_variants(cfg, lm.taps, lm.tap_weights) if ablations else []) + \
        (sweep_variants(cfg, factors) if sweep else [])
    per_seed = {v.name: [] for v in variants}
    with progress_bar(total=len(seeds) * len(variants), desc="ablate", disable=not progress) as bar:
        for seed in seeds:
            data = load_suite_data(suite, n, seed)
            done: dict[ExplainConfig, dict] = {}   # the sweep's (1, 1) cell is the full preset: run it once
            for v in variants:
                bar.set_description(f"seed {seed}: {v.name}")
                if v.config not in done:
                    done[v.config] = score_variant(lm, data.x, data.gt, v.config, seed, suite.batch)
                per_seed[v.name].append(done[v.config])
                bar.update()
    methods = {name: report.aggregate(vals) for name, vals in per_seed.items()}
    info = {v.name: {"changed": {f: _jsonable(getattr(v.config, f)) for f in v.changed},
                     "sweep": v.name.startswith("λ_area"), "lambda_area": v.config.lambda_area,
                     "lambda_tv": v.config.lambda_tv, "flags": flags(methods[v.name])} for v in variants}
    return {"suite": suite.name, "mode": "ablate", "n": n, "seeds": list(seeds), "machine": report.machine(),
            "model": lm.name, "data": suite.data, "preset": lm.preset, "config": dataclasses.asdict(cfg),
            "sweep_factors": list(factors), "variants": info, "methods": methods}


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def format_ablate(result: dict) -> str:
    """Two markdown tables (ablations, sweep) with each variant's flags in its name, and the footer."""
    k, parts = len(result["seeds"]), []
    for sweep in (False, True):
        rows = {f"{name} [{', '.join(info['flags'])}]" if info["flags"] else name: result["methods"][name]
                for name, info in result["variants"].items() if info["sweep"] == sweep}
        if rows:
            parts += [report.markdown_table(rows, COLUMNS, k, label="sweep" if sweep else "variant"), ""]
    return "\n".join(parts + [report.footer(result)])


def write_plots(result: dict, json_path: str | Path) -> list[Path]:
    """``<json stem>_sweep.png`` (sufficiency and area over the grid) and ``<json stem>_ablations.png``."""
    stem, out = Path(json_path).with_suffix(""), []
    cells = [{**result["methods"][name], **info} for name, info in result["variants"].items() if info["sweep"]]
    if cells:
        out.append(report.plot_sweep(cells, f"{stem}_sweep.png"))
    bars = {name: result["methods"][name] for name, info in result["variants"].items() if not info["sweep"]}
    if bars:
        out.append(report.plot_ablations(bars, f"{stem}_ablations.png"))
    return out
