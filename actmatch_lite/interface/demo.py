"""``python -m actmatch_lite demo --out DIR``: the package's main job on bundled inputs (``make demo``).

Four cases, each explained with its model's preset and written as a figure and a JSON record (the keys of
:data:`actmatch_lite.interface.explain_files.RECORD_KEYS`): a generated shape (``shapes-cnn``), a Fashion-MNIST
test item from the shipped subset (``fmnist-cnn``), a multi-instance canvas (``shapes-cnn`` with
:func:`actmatch_lite.method.instances.explain_instances`, one row per instance found) and scikit-image's chelsea
photo (``efficientnet-lite0``, ``imagenet`` preset, about half a minute on 2 CPU cores). A summary table in
markdown ends the run (:func:`format_table`).
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from actmatch_lite.data import load_fmnist_subset, load_photo, make_canvases, make_shapes
from actmatch_lite.evaluation import metrics
from actmatch_lite.interface.explain_files import SAVE_DPI, load_named_model, write_outputs
from actmatch_lite.interface.viz import show_instances
from actmatch_lite.method.config import get_preset
from actmatch_lite.method.explainer import explain
from actmatch_lite.method.instances import explain_instances, search_config

SHAPES_SEED = 2024        # demo inputs: fixed, and never used to tune presets or train networks
FMNIST_ITEM = 0           # index into the shipped 2,000-image test subset
CANVAS_SEED = 2024
CANVAS_INSTANCES = (3, 3)
PHOTO = "chelsea"
SEED = 0                  # the explainer's seed in every case
COLUMNS = ("input", "model", "target", "p before → after", "area", "sufficiency", "necessity", "seconds")


def format_table(rows: list[dict]) -> str:
    """Markdown table, one line per record (keys ``input``, ``model``, ``class_name``, ``target``, ``prob_before``,
    ``prob_after``, ``area``, ``sufficiency``, ``necessity``, ``seconds``; a record with ``skipped`` says why)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        if "skipped" in r:
            cells = [r["input"], r["model"], f"skipped: {r['skipped']}"] + [""] * (len(COLUMNS) - 3)
        else:
            cells = [r["input"], r["model"], f"{r['class_name']} ({r['target']})",
                     f"{r['prob_before']:.3f} → {r['prob_after']:.3f}", f"{100 * r['area']:.1f} %",
                     "yes" if r["sufficiency"] else "no", "yes" if r["necessity"] else "no", f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def model_preset(model):
    """The model's default explainer preset."""
    return get_preset(model.preset)


def _single(out: Path, stem: str, label: str, model, x: torch.Tensor, cfg, preset: str) -> dict:
    ex = explain(model, x, config=cfg, seed=SEED)
    return {"input": label, **write_outputs(out, stem, model, x, ex, cfg, image=label, preset=preset, seed=SEED)}


def _canvas(out: Path) -> list[dict]:
    """The multi-instance case: a figure of every instance and one record per instance."""
    model = load_named_model("shapes-cnn")
    cfg = search_config(model_preset(model))
    x = make_canvases(1, seed=CANVAS_SEED, n_instances=CANVAS_INSTANCES).x
    res = explain_instances(model, x, config=cfg, seed=SEED)
    masks, targets = res.masks[0], res.targets[0]
    fig = show_instances(x[0], list(masks))
    fig.savefig(out / "canvas.png", dpi=SAVE_DPI)
    plt.close(fig)
    with torch.no_grad():
        p_x = model.clf(x).softmax(1)[0]
    rows, kw = [], {"fill": cfg.fill, "mean": model.mean}
    for k, (m, y) in enumerate(zip(masks, targets.tolist())):
        m = m[None]
        rows.append({"input": f"canvas, instance {k + 1}/{len(masks)}", "model": model.name, "target": y,
                     "class_name": model.class_names[y], "prob_before": float(p_x[y]),
                     "prob_after": float(res.prob_after[0][k]), "area": float(m.float().mean()),
                     "sufficiency": float(metrics.sufficiency(model.clf, x, m, y, **kw)[0]),
                     "necessity": float(metrics.necessity(model.clf, x, m, y, **kw)[0]),
                     "seconds": res.seconds / len(masks), "figure": str(out / "canvas.png")})
    (out / "canvas.json").write_text(json.dumps({"rows": rows, "stops": res.stops[0]}, indent=1) + "\n")
    return rows or [{"input": "canvas", "model": model.name, "skipped": f"no instance found ({res.stops[0][0]})"}]


def _shape(out: Path) -> list[dict]:
    shapes = load_named_model("shapes-cnn")
    x = make_shapes(1, seed=SHAPES_SEED).x
    return [_single(out, "shapes", "shape", shapes, x, model_preset(shapes), shapes.preset)]


def _fmnist(out: Path) -> list[dict]:
    fmnist = load_named_model("fmnist-cnn")
    x = load_fmnist_subset()[0][FMNIST_ITEM:FMNIST_ITEM + 1]
    return [_single(out, "fmnist", f"Fashion-MNIST #{FMNIST_ITEM}", fmnist, x, model_preset(fmnist), fmnist.preset)]


def _photo(out: Path) -> list[dict]:
    try:
        photo = load_named_model("efficientnet-lite0")
    except ImportError as err:   # optional dependency: the rest of the demo still stands
        return [{"input": PHOTO, "model": "efficientnet-lite0", "skipped": str(err)}]
    return [_single(out, PHOTO, PHOTO, photo, load_photo(PHOTO), model_preset(photo), photo.preset)]


CASES = {"shape": _shape, "fmnist": _fmnist, "canvas": _canvas, "photo": _photo}   # name -> case(out) -> rows


def run_demo(out: Path) -> tuple[list[dict], str]:
    """Run every case of :data:`CASES` into ``out``; returns the records and the markdown table (also written to
    ``out/summary.md``)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for case in CASES.values() for row in case(out)]
    table = format_table(rows)
    (out / "summary.md").write_text(table + "\n")
    return rows, table
