"""Our extremal perturbation (``actmatch_lite.evaluation.baselines.extremal``) against the authors' TorchRay.

Two modes, each on shapes-cnn (64-px shapes) and EfficientNet-Lite0 (bundled photos), area 0.1, blur
perturbation, target-logit reward, every other setting at TorchRay's default:

(a) **identical settings**: our side takes TorchRay's own choices (``area_over="padded"``: the area counted over
    the mask with its margin; ``jitter="alternate"``: a flip on every even step). Reported: the max abs difference
    of the two soft masks, after 1, 2, 5, 20 steps on one image of each model and after N steps on every image,
    the IoU of the binary masks ``{m > 0.5}`` and, as the float-precision floor, the same numbers for TorchRay
    against TorchRay on the image moved by one float32 ulp (``torch.nextafter``).
(b) **our benchmark's settings** (``area_over="image"``, seeded random jitter, ``seed=0``) against TorchRay at its
    defaults, as a user of each sees them: binary masks at equal image area (the top ``round(a·H·W)`` pixels of
    each soft mask), their IoU, the IoU of ours with seed 0 against ours with seed 1 (the method's own spread
    under another jitter sequence), and the share of our top pixels that lie inside TorchRay's {m > 0.5}.

Both sides make N updates: ours ``steps=N``, TorchRay ``max_iter=N + 1`` (TorchRay returns the mask of its last
forward pass, before its last update). p(y*): the softmax of the target class on the preserved image (kept pixels
original, the rest at the strongest blur). Seconds: one CPU thread.

TorchRay is not a dependency of the package; install it outside the virtual environment, without its heavy
dependencies (pymongo, pycocotools, OpenCV; its attribution code needs only torch, numpy, matplotlib, PIL and
packaging, which the environment has)::

    .venv/bin/pip install --no-deps --target /tmp/torchray_pkg torchray==1.0.0.2
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/torchray_pkg .venv/bin/python benchmarks/extremal_vs_torchray.py --part shapes
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/torchray_pkg .venv/bin/python benchmarks/extremal_vs_torchray.py --part photos

Each part rewrites its own block of the report (between ``<!-- BEGIN part -->`` and ``<!-- END part -->``) and
leaves the rest of the file, hand-written notes included, as it is.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import torch

from actmatch_lite import load_model
from actmatch_lite.data import load_photo, make_shapes
from actmatch_lite.evaluation.baselines import masks_at_area
from actmatch_lite.evaluation.baselines.extremal import blend_stack, blur_stack, extremal_perturbation_scores

INSTALL = ("TorchRay is needed for this comparison (it is not a dependency of actmatch_lite). Install it outside "
           "the venv without its dependencies (with them it pulls pymongo, pycocotools and OpenCV):\n"
           "    .venv/bin/pip install --no-deps --target /tmp/torchray_pkg torchray==1.0.0.2\n"
           "and run with PYTHONPATH=/tmp/torchray_pkg.")
PHOTOS = ("chelsea", "coffee", "rocket")
OUT = Path(__file__).with_suffix(".md")
CHECKPOINTS = (1, 2, 5, 20)
IDENTICAL = {"area_over": "padded", "jitter": "alternate"}


def torchray_extremal():
    try:
        from torchray.attribution.extremal_perturbation import extremal_perturbation
    except ImportError as err:
        sys.exit(f"cannot import torchray ({err}).\n{INSTALL}")
    return extremal_perturbation


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


class Pair:
    """One image: runs both methods for N updates and measures the masks."""

    def __init__(self, tr_fn, clf, x: torch.Tensor, area: float):
        self.tr_fn, self.clf, self.x, self.area = tr_fn, clf, x, area
        with torch.no_grad():
            z = clf(x)
        self.y = int(z.argmax(1))
        self.p_full = z.softmax(1)[0, self.y].item()
        self.stack = blur_stack(x)
        self.k = torch.tensor([round(area * x.shape[-2] * x.shape[-1])])

    def ours(self, steps: int, **kwargs):
        return timed(extremal_perturbation_scores, self.clf, self.x, self.y, area=self.area, steps=steps,
                     perturbation="blur", reward="logit", **kwargs)

    def torchray(self, steps: int, x: torch.Tensor | None = None):
        (m, _), s = timed(self.tr_fn, self.clf, self.x if x is None else x, self.y, areas=[self.area],
                          max_iter=steps + 1, perturbation="blur")
        return m.detach(), s

    def p_kept(self, keep: torch.Tensor) -> float:
        with torch.no_grad():
            return self.clf(blend_stack(self.stack, keep.float())).softmax(1)[0, self.y].item()

    def top_k(self, m: torch.Tensor) -> torch.Tensor:
        return masks_at_area(m, self.k)


def checkpoints(pair: Pair, name: str) -> list[str]:
    """Mode (a), step by step: max |Δm| after 1, 2, 5, 20 updates, ours and TorchRay(x + 1 ulp) vs TorchRay."""
    x_ulp = torch.nextafter(pair.x, torch.tensor(float("inf")))
    rows = []
    for n in CHECKPOINTS:
        theirs, _ = pair.torchray(n)
        ours, _ = pair.ours(n, **IDENTICAL)
        moved, _ = pair.torchray(n, x_ulp)
        rows.append(f"| {name} | {n} | {(ours - theirs).abs().max().item():.1e} | "
                    f"{(moved - theirs).abs().max().item():.1e} | {theirs.mean().item():.4f} |")
        print(rows[-1], flush=True)
    return rows


def both_modes(pair: Pair, name: str, steps: int) -> tuple[dict, dict]:
    """Mode (a) and (b) after ``steps`` updates; TorchRay at its defaults is the same run in both."""
    theirs, s_tr = pair.torchray(steps)
    moved, _ = pair.torchray(steps, torch.nextafter(pair.x, torch.tensor(float("inf"))))
    same, s_same = pair.ours(steps, **IDENTICAL)
    bin_tr, bin_same, bin_moved = theirs > 0.5, same > 0.5, moved > 0.5
    a = {"image": name, "diff": (same - theirs).abs().max().item(), "diff_floor": (moved - theirs).abs().max().item(),
         "iou": iou(bin_same, bin_tr), "iou_floor": iou(bin_moved, bin_tr),
         "mean_ours": same.mean().item(), "mean_tr": theirs.mean().item(),
         "kept_ours": bin_same.float().mean().item(), "kept_tr": bin_tr.float().mean().item(),
         "p_full": pair.p_full, "p_ours": pair.p_kept(bin_same), "p_tr": pair.p_kept(bin_tr),
         "s_ours": s_same, "s_tr": s_tr}
    ours, s_ours = pair.ours(steps, jitter=True, seed=0)
    ours1, _ = pair.ours(steps, jitter=True, seed=1)
    k_ours, k_ours1, k_tr = pair.top_k(ours), pair.top_k(ours1), pair.top_k(theirs)
    b = {"image": name, "iou": iou(k_ours, k_tr), "iou_seed": iou(k_ours, k_ours1),
         "inside": (k_ours & (theirs > 0.5)).sum().item() / k_ours.sum().item(),
         "ones_ours": (ours == 1).float().mean().item(), "ones_tr": (theirs == 1).float().mean().item(),
         "mean_ours": ours.mean().item(), "mean_tr": theirs.mean().item(),
         "kept_ours": (ours > 0.5).float().mean().item(), "kept_tr": (theirs > 0.5).float().mean().item(),
         "p_full": pair.p_full, "p_ours": pair.p_kept(k_ours), "p_tr": pair.p_kept(k_tr),
         "s_ours": s_ours, "s_tr": s_tr}
    print(a, b, sep="\n", flush=True)
    return a, b


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    lines = ["| image | " + " | ".join(c[1] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['image']} | " + " | ".join(format(r[c[0]], c[2]) for c in columns) + " |")
    mean = {c[0]: sum(r[c[0]] for r in rows) / len(rows) for c in columns}
    maxima = {c[0]: max(r[c[0]] for r in rows) for c in columns}
    lines.append("| **mean** | " + " | ".join(format(mean[c[0]], c[2]) for c in columns) + " |")
    if any(c[0].startswith("diff") for c in columns):
        lines.append("| **max** | " + " | ".join(format(maxima[c[0]], c[2]) if c[0].startswith("diff") else ""
                                                  for c in columns) + " |")
    return lines


COLS_A = [("diff", "max \\|Δm\\| ours vs TR", ".1e"), ("diff_floor", "max \\|Δm\\| TR(x+ulp) vs TR", ".1e"),
          ("iou", "IoU m>0.5 ours vs TR", ".3f"), ("iou_floor", "IoU TR(x+ulp) vs TR", ".3f"),
          ("kept_ours", "kept ours", ".3f"), ("kept_tr", "kept TR", ".3f"),
          ("p_full", "p(y*) full", ".3f"), ("p_ours", "p(y*) ours", ".3f"), ("p_tr", "p(y*) TR", ".3f"),
          ("s_ours", "s ours", ".1f"), ("s_tr", "s TR", ".1f")]
COLS_B = [("iou", "IoU top-k ours vs TR", ".3f"), ("iou_seed", "IoU top-k ours seed 0 vs 1", ".3f"),
          ("inside", "top-k ours inside TR m>0.5", ".3f"), ("ones_ours", "m=1 ours", ".3f"),
          ("ones_tr", "m=1 TR", ".3f"),
          ("mean_ours", "mean m ours", ".3f"), ("mean_tr", "mean m TR", ".3f"),
          ("kept_ours", "m>0.5 ours", ".3f"), ("kept_tr", "m>0.5 TR", ".3f"),
          ("p_full", "p(y*) full", ".3f"), ("p_ours", "p(y*) ours", ".3f"), ("p_tr", "p(y*) TR", ".3f"),
          ("s_ours", "s ours", ".1f"), ("s_tr", "s TR", ".1f")]


def run_part(tr_fn, model: str, images: list[tuple[str, torch.Tensor]], clf, area: float, steps: int,
             command: str) -> str:
    pairs = [(name, Pair(tr_fn, clf, x, area)) for name, x in images]
    lines = [f"```\n{command}\n```", "", f"#### (a) identical settings, step by step ({model}, {pairs[0][0]})", "",
             "| image | updates | max \\|Δm\\| ours vs TorchRay | max \\|Δm\\| TorchRay(x + 1 ulp) vs TorchRay "
             "| mean m TorchRay |", "|---|---|---|---|---|"]
    lines += checkpoints(pairs[0][1], pairs[0][0])
    results = [both_modes(pair, name, steps) for name, pair in pairs]
    lines += ["", f"#### (a) identical settings, {steps} updates ({model}, {len(pairs)} images)", "",
              "Binary masks: {m > 0.5}; kept = their fraction of the image.", ""]
    lines += table([r[0] for r in results], COLS_A)
    lines += ["", f"#### (b) our benchmark's settings vs TorchRay's defaults, {steps} updates ({model}, "
                  f"{len(pairs)} images)", "",
              f"Binary masks at equal image area: top {int(pairs[0][1].k)} pixels of each soft mask (ties, e.g. "
              "pixels at exactly m = 1, broken by row-major order, as in the benchmark). m=1: fraction of the image "
              "at exactly 1.", ""]
    lines += table([r[1] for r in results], COLS_B)
    return "\n".join(lines) + "\n"


def write_block(path: Path, part: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {part} -->", f"<!-- END {part} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = (text.rstrip() + "\n\n" if text else "# Extremal perturbation: ours vs TorchRay 1.0.0.2\n\n") + block
    path.write_text(text.rstrip() + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("shapes", "photos"), required=True)
    ap.add_argument("--area", type=float, default=0.1)
    ap.add_argument("--images", type=int, default=None, help="shapes images (default 8) or photos (default 2)")
    ap.add_argument("--steps", type=int, default=None, help="updates per run (default 300 shapes, 150 photos)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    tr_fn = torchray_extremal()
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    torch.set_num_threads(1)
    torch.set_grad_enabled(True)
    command = "OMP_NUM_THREADS=1 PYTHONPATH=/tmp/torchray_pkg .venv/bin/python benchmarks/extremal_vs_torchray.py"
    command += " " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    if args.part == "shapes":
        n, steps = args.images or 8, args.steps or 300
        clf = load_model("shapes-cnn").clf
        x = make_shapes(n, seed=0).x
        images = [(f"shapes #{i}", x[i:i + 1]) for i in range(n)]
        model = f"shapes-cnn, make_shapes({n}, seed=0)"
    else:
        n, steps = args.images or 2, args.steps or 150
        clf = load_model("efficientnet-lite0").clf
        images = [(name, load_photo(name)) for name in PHOTOS[:n]]
        model = "efficientnet-lite0, bundled photos"
    body = run_part(tr_fn, clf=clf, model=model, images=images, area=args.area, steps=steps,
                    command=command.strip())
    body += f"\n(total {time.perf_counter() - start:.0f} s)\n"
    print(body, flush=True)
    write_block(args.out, args.part, body)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
