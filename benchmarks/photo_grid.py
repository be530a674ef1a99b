"""The figure grid of RESULTS.md's photo section: 12 photos, what each method keeps at the same area.

    .venv/bin/python benchmarks/photo_grid.py   # after benchmarks/run_all.sh photos (reads photos_masks.npz)

Rows: the photo suite's first 13 photos without the horse drawing, titled with EfficientNet-Lite0's top-1 and its
probability; columns: the photo, then the pixels kept by actmatch, extremal perturbation and Grad-CAM (the rest
grey), all three at actmatch's area (the benchmark holds every baseline to it). Writes ``photos_grid.jpg``.
"""
from __future__ import annotations

import json
from pathlib import Path

from actmatch_lite.data.photo_suite import suite_photos
from actmatch_lite.evaluation import report
from actmatch_lite.interface import viz

HERE = Path(__file__).resolve().parent
METHODS = ("actmatch", "extremal-perturbation", "gradcam")


def main() -> None:
    names, masks = report.read_masks(HERE / "photos_masks.npz")
    records = {r["name"]: r for r in json.loads((HERE / "photos.json").read_text())["photos"]}
    x, _ = suite_photos(n=len(names))
    show = [i for i, n in enumerate(names) if n != "horse"]
    titles = [f"{names[i]}: {records[names[i]]['class_name']} ({records[names[i]]['p']:.2f})" for i in show]
    fig = viz.show_kept_grid(x[show], {k: masks[k][show] for k in METHODS}, titles)
    out = HERE / "photos_grid.jpg"
    out.write_bytes(viz.jpeg_bytes(fig))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
