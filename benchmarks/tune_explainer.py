"""Measure the explainer against its targets on a preset; prints a markdown table.

    .venv/bin/python benchmarks/tune_explainer.py shapes --seed 1000 --n 64
    .venv/bin/python benchmarks/tune_explainer.py fmnist --seed 1000 --n 64
    .venv/bin/python benchmarks/tune_explainer.py shapes --set lambda_area=30 --set steps=150   # an ablation

shapes: images from ``make_shapes(n, seed)``; fmnist: ``n`` images of the shipped test subset starting at
``seed`` (Fashion-MNIST test split). Metrics: M1 sufficiency and M3 necessity with the preset's fill, M2
robustness over fresh noise backgrounds (gaussian, uniform) and over other images (shuffle), M4 area,
M9 IoU and area ratio against the true object mask (shapes only), M14 seconds per image.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import time

import torch

from actmatch_lite import metrics
from actmatch_lite.config import get_preset
from actmatch_lite.explainer import explain
from actmatch_lite.models.registry import load_model

MODEL = {"shapes": "shapes-cnn", "fmnist": "fmnist-cnn"}
TARGETS = {"shapes": "suff ≥ 0.99, rob(noise) ≥ 0.95, nec ≥ 0.90, IoU ≥ 0.75, area ratio 0.5–1.5, ≤ 0.5 s/img",
           "fmnist": "suff ≥ 0.99 at area ≤ 0.05, ≤ 0.1 s/img"}


def load_data(dataset: str, n: int, seed: int):
    if dataset == "shapes":
        from actmatch_lite.data.shapes import make_shapes
        d = make_shapes(n, seed=seed)
        return d.x, d.masks
    from actmatch_lite.data.fmnist import load_fmnist_subset
    x, _ = load_fmnist_subset()
    return x[seed:seed + n], None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=sorted(MODEL))
    ap.add_argument("--preset", default=None, help="preset name (default: the dataset's)")
    ap.add_argument("--seed", type=int, default=1000, help="data seed (never one used while tuning)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    args = ap.parse_args(argv)
    lm = load_model(MODEL[args.dataset], device="cpu")
    cfg = get_preset(args.preset or lm.preset)
    cfg = dataclasses.replace(cfg, **{k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)})
    x, gt = load_data(args.dataset, args.n, args.seed)
    masks, soft, steps, seconds = [], [], [], 0.0
    for lo in range(0, len(x), args.batch):
        t0 = time.perf_counter()
        ex = explain(lm, x[lo:lo + args.batch], config=cfg, seed=args.seed + lo, progress=False)
        seconds += time.perf_counter() - t0
        masks.append(ex.mask), soft.append(ex.soft_mask), steps.append(ex.steps_run)
    m, steps = torch.cat(masks), torch.cat(steps).float()
    fill = dict(fill=cfg.fill, mean=lm.mean)
    rows = {
        "M1 sufficiency ↑": metrics.fidelity.sufficiency(lm.clf, x, m, **fill),
        "M2 robustness, noise ↑": metrics.fidelity.robustness(lm.clf, x, m, kinds=("gaussian", "uniform") * 2,
                                                               mean=lm.mean, seed=args.seed + 1),
        "M2 robustness, shuffle ↑": metrics.fidelity.robustness(lm.clf, x, m, kinds=("shuffle",), mean=lm.mean,
                                                                 seed=args.seed + 2),
        "M3 necessity ↑": metrics.fidelity.necessity(lm.clf, x, m, **fill),
        "M4 area ↓": metrics.mask.area(m),
    }
    if gt is not None:
        rows["M9 IoU ↑"] = metrics.localisation.iou(m, gt)
        rows["area / object area"] = m.flatten(1).float().sum(1) / gt.flatten(1).float().sum(1)
    rows["steps run"] = steps
    print(f"\n{args.dataset}, model {lm.name}, preset {args.preset or lm.preset}, data seed {args.seed}, n {len(x)}, "
          f"batch {args.batch}, {torch.get_num_threads()} CPU threads; target: {TARGETS[args.dataset]}")
    if args.set:
        print("overrides: " + ", ".join(args.set))
    print("\n| metric | mean | std | min |\n|---|---|---|---|")
    for name, v in rows.items():
        v = v.float()
        print(f"| {name} | {v.mean():.3f} | {v.std():.3f} | {v.min():.3f} |")
    print(f"| M14 seconds / image | {seconds / len(x):.3f} | | |")


if __name__ == "__main__":
    main()
