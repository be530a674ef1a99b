"""Measure the ``imagenet`` preset on the bundled photos (EfficientNet-Lite0); prints a markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_photos.py                       # every photo of the suite
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_photos.py --photos chelsea coffee rocket --set lr=3e-3

One image at a time (the per-image cost is what the target bounds), seed ``--seed``. Columns: the class of
``x`` (top-1, the class explained), kept = M1 sufficiency with the preset's fill (argmax f(m ⊙ x + (1 - m) ⊙ fill)
is still that class), p(y*) on ``x`` and on the explanation, the hard mask's area, necessity (M3: removing the
mask changes the top-1), robustness over fresh gaussian and uniform backgrounds (M2), the steps run and the
wall-clock and CPU seconds of ``explain``. Target (issue): kept, area ≤ 10 %, ≤ 60 s per photo on one thread.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time

import torch

from actmatch_lite.data import load_photo
from actmatch_lite.evaluation import metrics
from actmatch_lite.evaluation.suites import OBJECT_PHOTOS
from actmatch_lite.method.config import get_preset
from actmatch_lite.method.explainer import explain
from actmatch_lite.models.registry import load_model

TARGET = "kept, area ≤ 10 %, ≤ 60 s per photo (one CPU thread)"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", nargs="+", default=list(OBJECT_PHOTOS), help="photo names (default: the suite's)")
    ap.add_argument("--preset", default="imagenet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    ap.add_argument("--trace", type=int, default=0, metavar="K", help="print the loss history every K steps")
    args = ap.parse_args(argv)
    lm = load_model("efficientnet-lite0", device="cpu")
    cfg = get_preset(args.preset)
    cfg = dataclasses.replace(cfg, **{k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)})
    fill = dict(fill=cfg.fill, mean=lm.mean)
    rows = []
    for name in args.photos:
        x = load_photo(name)
        t0, c0 = time.perf_counter(), time.process_time()
        ex = explain(lm, x, config=cfg, seed=args.seed, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = ex.mask
        kept = float(metrics.fidelity.sufficiency(lm.clf, x, m, **fill)[0])
        nec = float(metrics.fidelity.necessity(lm.clf, x, m, **fill)[0])
        rob = float(metrics.fidelity.robustness(lm.clf, x, m, kinds=("gaussian", "uniform") * 2, mean=lm.mean,
                                                seed=args.seed + 1)[0])
        y = int(ex.target[0])
        rows.append((name, f"{y} {lm.class_names[y]}", kept, float(ex.prob_before[0]), float(ex.prob_after[0]),
                     float(ex.area[0]), nec, rob, int(ex.steps_run[0]), wall, cpu))
        if args.trace:
            h = ex.history
            for s in range(0, len(h["total"]), args.trace):
                print(f"  {name} step {s:3d}: " + " ".join(f"{k}={v[s]:.3g}" for k, v in h.items()), flush=True, file=sys.stderr)
        print(f"  done {name}: area {rows[-1][5]:.3f} kept {kept:.0f} {wall:.1f}s", flush=True, file=sys.stderr)
    print(f"\nphotos, model {lm.name}, preset {args.preset}, seed {args.seed}, {torch.get_num_threads()} CPU "
          f"thread(s); target: {TARGET}")
    if args.set:
        print("overrides: " + ", ".join(args.set))
    print("\n| photo | class y* | kept? | p(y*) before | p(y*) after | area % | necessity | robustness (noise) "
          "| steps | seconds (wall) | CPU seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {'yes' if r[2] else 'no'} | {r[3]:.3f} | {r[4]:.3f} | {100 * r[5]:.1f} | "
              f"{r[6]:.0f} | {r[7]:.2f} | {r[8]} | {r[9]:.1f} | {r[10]:.1f} |")
    n = len(rows)
    print(f"| **mean** | | {sum(r[2] for r in rows) / n:.2f} | {sum(r[3] for r in rows) / n:.3f} | "
          f"{sum(r[4] for r in rows) / n:.3f} | {100 * sum(r[5] for r in rows) / n:.1f} | "
          f"{sum(r[6] for r in rows) / n:.2f} | {sum(r[7] for r in rows) / n:.2f} | | "
          f"{sum(r[9] for r in rows) / n:.1f} | {sum(r[10] for r in rows) / n:.1f} |")


if __name__ == "__main__":
    main()
