"""Levers on the cost of one photo explanation (EfficientNet-Lite0, the ``imagenet`` preset), each with its price.

    .venv/bin/python benchmarks/photo_speed.py [--photos chelsea coffee camera] [--levers NAME ...]

Each lever changes ONE thing against the preset on 1 thread (the 2-thread rows: the thread count, then both) and
explains every photo once (seed 0, after one untimed warm-up call); ``--levers`` picks rows by name. The table
gives seconds per photo and what the lever costs in quality: the mask's area, whether the top-1 label is kept,
and the number of steps run. Seconds are wall-clock; the footer gives the load.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

from actmatch_lite import explain, load_model
from actmatch_lite.data.photo_suite import load_suite_photo
from actmatch_lite.evaluation.report import machine
from actmatch_lite.method.config import get_preset


def levers():
    base = get_preset("imagenet")
    return {   # name -> (threads, channels_last, config)
        "preset (1 thread)": (1, False, base),
        "2 threads": (2, False, base),
        "2 threads, warm-up 75 of 125 steps": (2, False, get_preset("imagenet-fast")),
        "channels_last model": (1, True, base),
        "warm-up 100 of 170 steps": (1, False, dataclasses.replace(base, soft_steps=100, steps=170)),
        "warm-up 75 of 125 steps": (1, False, get_preset("imagenet-fast")),
        "no robustness pass (λ_rob 0)": (1, False, dataclasses.replace(base, lambda_rob=0.0)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", nargs="+", default=["chelsea", "coffee", "camera"])
    ap.add_argument("--levers", nargs="+", default=None, help="only these rows (default: all)")
    args = ap.parse_args()
    every = levers()
    chosen = every if args.levers is None else {k: every[k] for k in args.levers}
    x = torch.cat([load_suite_photo(p) for p in args.photos])
    print(f"**Photo speed levers** ({', '.join(args.photos)}; EfficientNet-Lite0, 224 px, seed 0)\n")
    print("```\n.venv/bin/python benchmarks/photo_speed.py --photos " + " ".join(args.photos)
          + ("" if args.levers is None else " --levers " + " ".join(repr(k) for k in args.levers)) + "\n```\n")
    print("| lever | s per photo | " + " | ".join(f"area {p}" for p in args.photos) + " | label kept | steps run |")
    print("|---|---|" + "---|" * len(args.photos) + "---|---|")
    for name, (threads, channels_last, cfg) in chosen.items():
        torch.set_num_threads(threads)
        model = load_model("efficientnet-lite0")
        if channels_last:
            model.clf.to(memory_format=torch.channels_last)
        explain(model, x[:1], config=cfg, seed=0, progress=False)   # untimed warm-up
        secs, areas, kept, steps = 0.0, [], 0, []
        for i in range(len(x)):
            start = time.perf_counter()
            e = explain(model, x[i:i + 1], config=cfg, seed=0, progress=False)
            secs += time.perf_counter() - start
            areas.append(f"{100 * float(e.area):.1f} %")
            kept += int(e.label_kept.item())
            steps.append(str(int(e.steps_run)))
        print(f"| {name} | {secs / len(x):.1f} | " + " | ".join(areas) + f" | {kept}/{len(x)} | {', '.join(steps)} |",
              flush=True)
    m = machine()
    print(f"\nMachine: {m['cpu']}, {os.cpu_count()} cores, torch {torch.__version__}; load average "
          f"{[round(v, 2) for v in os.getloadavg()]} at the end (other jobs shared the CPU when it is above the "
          "threads used).")


if __name__ == "__main__":
    main()
