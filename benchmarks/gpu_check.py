"""On a GPU machine: seconds per image, run-to-run identity and agreement with the CPU, for each shipped model.

    python benchmarks/gpu_check.py                      # CUDA; add --cpu-images 16 to compare with the CPU
    python -m pytest tests/test_devices.py              # the device tests (they run on CUDA there)
    make test                                           # every notebook under nbval, on the GPU

For each model: the preset's explanation of a fixed batch on ``--device`` (after a 2-step warm-up), timed with the
device synchronised; the same call again, to check that the seed fixes the result; optionally the first
``--cpu-images`` images on both devices (mask IoU between them, CPU seconds). Last, the operations torch itself
flags as nondeterministic on that device during a short explanation of each model and the amortized explainer.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import torch

from actmatch_lite import explain, get_preset, load_model
from actmatch_lite.data import make_shapes
from actmatch_lite.data.fmnist import load_fmnist_subset
from actmatch_lite.data.photos import load_photo
from actmatch_lite.evaluation import metrics
from actmatch_lite.models import load_amortized


def cases() -> dict[str, torch.Tensor]:
    x_fm, _ = load_fmnist_subset()
    photos = torch.cat([load_photo(p) for p in ("chelsea", "coffee", "rocket", "camera")])
    return {"shapes-cnn": make_shapes(64, seed=2024).x, "fmnist-cnn": x_fm[1000:1064], "efficientnet-lite0": photos}


def timed(name: str, x: torch.Tensor, device: str):
    """The preset's explanation of ``x`` on ``device`` and its seconds per image (after a short warm-up)."""
    lm = load_model(name, device=device)
    explain(lm, x[:1], config=dataclasses.replace(get_preset(lm.preset), steps=2), progress=False)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    ex = explain(lm, x, progress=False)
    sync()
    return ex, (time.perf_counter() - start) / len(x)


def flagged_ops(data: dict[str, torch.Tensor], device: str) -> list[str]:
    """Messages of the operations torch flags as nondeterministic while explaining a few images of each model."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name, x in data.items():
                lm = load_model(name, device=device)
                explain(lm, x[:2], config=dataclasses.replace(get_preset(lm.preset), steps=3), progress=False)
            load_amortized(load_model("shapes-cnn", device=device)).explain(data["shapes-cnn"][:2], refine_steps=2)
    finally:
        torch.use_deterministic_algorithms(False)
    return sorted({str(w.message).split(".")[0] for w in caught if "determinis" in str(w.message)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--cpu-images", type=int, default=0, help="also explain the first N images on the CPU")
    args = p.parse_args()
    data = cases()
    print(f"device {args.device}: {torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}, "
          f"torch {torch.__version__}, cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}\n")
    print("| model | batch | seconds / image | identical run to run | mean area | IoU with the CPU mask (mean, min) "
          "| CPU seconds / image |")
    print("|---|---|---|---|---|---|---|")
    for name, x in data.items():
        (a, seconds), (b, _) = timed(name, x, args.device), timed(name, x, args.device)
        same = torch.equal(a.mask, b.mask) and torch.equal(a.soft_mask, b.soft_mask)
        cpu = ""
        if args.cpu_images:
            # the same sub-batch on both devices: batch size alone changes the rounding of the stacked networks
            (g, _), (c, cpu_seconds) = (timed(name, x[:args.cpu_images], d) for d in (args.device, "cpu"))
            overlap = metrics.iou(g.mask, c.mask)
            cpu = f"{overlap.mean():.3f}, {overlap.min():.3f} | {cpu_seconds:.3f}"
        print(f"| {name} | {len(x)} | {seconds:.4f} | {'yes' if same else 'NO'} | {a.area.mean():.4f} | "
              f"{cpu or '– | –'} |", flush=True)
    print("\nflagged as nondeterministic:", "; ".join(flagged_ops(data, args.device)) or "nothing")


if __name__ == "__main__":
    main()
