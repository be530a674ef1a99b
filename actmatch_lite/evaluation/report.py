"""Results of ``bench``/``ablate``: the machine, mean ± std over seeds, markdown tables, JSON and small plots.

JSON shape (both commands)::

    {"suite", "n", "seeds", "machine", "methods": {NAME: {METRIC: {"mean", "std", "per_seed"}}}, ...}

A metric value is always the dict ``{"mean", "std", "per_seed"}``: ``per_seed`` holds one number per seed (the
mean over that seed's images, NaN where undefined for every image), ``mean``/``std`` are over the finite
``per_seed`` values (``std`` is 0 for one seed; both NaN when no seed gave a value). A metric that does not
apply to a suite is absent. A method that could not run is ``{"skipped": REASON}``. Seconds are wall-clock.
"""
from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from actmatch_lite.evaluation.scoring import arrow

MISSING = "–"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """What the numbers were measured on; the load average shows whether other work shared the CPU."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "load_average_1_5_15": [round(v, 2) for v in load]}


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict]:
    """``[{metric: value} per seed]`` -> ``{metric: {"mean", "std", "per_seed"}}`` (over the finite values)."""
    names = list(dict.fromkeys(k for d in per_seed for k in d))
    out = {}
    for k in names:
        vals = [float(d.get(k, math.nan)) for d in per_seed]
        v = torch.tensor([x for x in vals if math.isfinite(x)], dtype=torch.float64)
        mean = float(v.mean()) if len(v) else math.nan
        std = float(v.std()) if len(v) > 1 else (0.0 if len(v) else math.nan)
        out[k] = {"mean": mean, "std": std, "per_seed": vals}
    return out


def cell(entry: Mapping | None, metric: str, n_seeds: int) -> str:
    """``"0.953 ± 0.012"`` (3 decimals; seconds with 3 significant digits); the std only with several seeds."""
    if not entry or metric not in entry or not math.isfinite(entry[metric]["mean"]):
        return MISSING
    fmt = "{:.3g}" if metric.startswith("seconds") else "{:.3f}"
    mean, std = entry[metric]["mean"], entry[metric]["std"]
    return fmt.format(mean) if n_seeds < 2 else f"{fmt.format(mean)} ± {fmt.format(std)}"


def markdown_table(methods: Mapping[str, Mapping], columns: Sequence[str], n_seeds: int, label: str = "method") -> str:
    """One row per method, one column per metric (header with its ↑/↓); skipped methods say why."""
    columns = [c for c in columns if any(c in (e or {}) for e in methods.values())]
    lines = ["| " + " | ".join([label, *(f"{c} {arrow(c)}" for c in columns)]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for name, entry in methods.items():
        if "skipped" in entry:
            cells = [f"skipped: {entry['skipped']}"] + [""] * (len(columns) - 1)
        else:
            cells = [cell(entry, c, n_seeds) for c in columns]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def footer(result: Mapping) -> str:
    """The line under a table: model, data, seeds, images, machine, load."""
    m = result["machine"]
    return (f"{result['suite']}: model {result['model']}, {result['n']} images × seeds {result['seeds']} "
            f"({result['data']}). Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
            f"({m['torch_threads']} threads), load average {m['load_average_1_5_15']} at the end; "
            "seconds are wall-clock on a CPU shared with other jobs.")


def write_json(result: Mapping, path: str | Path) -> Path:
    """Write ``result`` as JSON (NaN as ``NaN``, as Python's json does), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    return path


def write_masks(masks: Mapping, path: str | Path) -> Path:
    """Save ``{method: (n, 1, H, W) bool, "names": [...]}`` as a compressed ``.npz``: bits packed per method
    (``np.packbits`` along the flattened mask), shapes and names alongside. :func:`read_masks` reverses it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"names": np.array(masks["names"])}
    for name, m in masks.items():
        if name != "names":
            arrays[f"mask:{name}"] = np.packbits(m.numpy().astype(bool).reshape(len(m), -1), axis=1)
            arrays[f"shape:{name}"] = np.array(m.shape)
    np.savez_compressed(path, **arrays)
    return path


def read_masks(path: str | Path) -> tuple[list[str], dict[str, torch.Tensor]]:
    """``(names, {method: (n, 1, H, W) bool})`` from a file of :func:`write_masks`."""
    with np.load(path) as z:
        out = {}
        for key in z.files:
            if key.startswith("mask:"):
                name = key[5:]
                shape = tuple(int(v) for v in z[f"shape:{name}"])
                bits = np.unpackbits(z[key], axis=1, count=int(np.prod(shape[1:])))
                out[name] = torch.from_numpy(bits.reshape(shape).astype(bool))
        return [str(v) for v in z["names"]], out


def plot_sweep(cells: Sequence[Mapping], path: str | Path, metrics_: Sequence[str] = ("sufficiency", "area")) -> Path:
    """Heatmaps over (λ_area, λ_tv) of ``metrics_``, one panel each; flagged cells are marked with their flag.

    ``cells``: dicts with ``lambda_area``, ``lambda_tv``, ``flags`` (list of str) and ``{metric: {"mean", ...}}``.
    """
    areas = sorted({c["lambda_area"] for c in cells})
    tvs = sorted({c["lambda_tv"] for c in cells})
    fig, axes = plt.subplots(1, len(metrics_), figsize=(4.2 * len(metrics_), 3.6))
    for ax, metric in zip(list(axes) if len(metrics_) > 1 else [axes], metrics_):
        grid = pd.DataFrame(math.nan, index=areas[::-1], columns=tvs)
        notes = pd.DataFrame("", index=areas[::-1], columns=tvs)
        for c in cells:
            value = c.get(metric, {}).get("mean", math.nan)
            grid.loc[c["lambda_area"], c["lambda_tv"]] = value
            notes.loc[c["lambda_area"], c["lambda_tv"]] = f"{value:.2f}" + ("\n" + ",".join(c["flags"]) if c["flags"] else "")
        # both metrics are fractions: a fixed 0-1 scale keeps panels and runs comparable
        sns.heatmap(grid.astype(float), annot=notes.values, fmt="", ax=ax, cmap="viridis", vmin=0, vmax=1,
                    annot_kws={"fontsize": 7})
        ax.set_xlabel("λ_tv"), ax.set_ylabel("λ_area"), ax.set_title(f"{metric} {arrow(metric)}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_ablations(variants: Mapping[str, Mapping], path: str | Path,
                   metrics_: Sequence[str] = ("sufficiency", "robustness", "necessity", "area", "iou")) -> Path:
    """Grouped bars: one group per ablation variant, one bar per metric (mean over seeds, std as error bar)."""
    rows = [{"variant": name, "metric": f"{k} {arrow(k)}", "value": v[k]["mean"], "std": v[k]["std"]}
            for name, v in variants.items() if "skipped" not in v for k in metrics_ if k in v]
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(variants) + 2), 3.6))
    sns.barplot(df, x="variant", y="value", hue="metric", ax=ax, errorbar=None)
    ax.set_ylim(0, 1.05), ax.set_xlabel(""), ax.set_ylabel("mean over seeds")
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.legend(fontsize=7, ncols=len(metrics_), loc="upper center", bbox_to_anchor=(0.5, 1.18), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
