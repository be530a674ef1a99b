"""Benchmark suites: which data, which classifier and which settings each ``bench``/``ablate`` run uses.

A suite is a frozen record (every choice visible); :func:`load_suite_data` draws its images for one seed.
The data seed of a run is never one used for training or tuning (training: shapes seeds 0-9 and 10 000,
amortized shapes seed 1, its held-out check 777, the demo 2024, tuning ``benchmarks/tune_explainer.py``
1000+); the default seeds 101, 102, 103 are clear of all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from actmatch_lite._validate import InputError
from actmatch_lite.data import make_canvases, make_photo_composites, make_shapes
from actmatch_lite.data.fmnist import SUBSET_FILE, find_fashion_mnist, load_fashion_mnist, load_fmnist_subset
from actmatch_lite.data.photo_suite import BENCHMARK_ONLY_SOURCES, CORE_NAMES, NAMES, load_suite_photo, suite_photos
from actmatch_lite.evaluation.baselines import extremal
from actmatch_lite.method.instances import MIN_PROB
from actmatch_lite.paths import data_file

DEFAULT_SEEDS = (101, 102, 103)
# The six scikit-image photos the photo preset was tuned on (benchmarks/tune_photos.py); they open the suite.
OBJECT_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "horse", "camera")
CONFIDENT = 0.5   # a photo is "confident" when the model's top-1 probability is at least this
CANVAS_INSTANCES = (2, 3)   # instances per canvas, inclusive: the paper's "group of otters", kept small
COMPOSITE_INSTANCES = (2, 3)   # copies per photo composite: several instances, as the paper's otters


def extremal_options(side: int) -> dict:
    """Extremal perturbation's lengths scaled to an image of ``side`` pixels: TorchRay's defaults (grid step 7,
    kernel σ 21, blur up to σ 20) are sized for 224-px ImageNet photos; on a 28-px item they would allow no region
    narrower than the item itself. Each length is multiplied by ``side / 224`` (grid step at least 1)."""
    scale = side / 224
    return {"grid_step": max(1, round(extremal.GRID_STEP * scale)), "sigma": extremal.SIGMA * scale,
            "max_blur": extremal.MAX_BLUR * scale}

# the photo suites' baselines do a fraction of their default work: EfficientNet-Lite0 costs ~20 ms a pass on 2 cores
PHOTO_BASELINE_OPTIONS = {"integrated-gradients": {"n_steps": 16}, "rise": {"n_masks": 400},
                          "meaningful-perturbation": {"steps": 100}, "occlusion": {"window": 32, "stride": 16}}


@dataclass(frozen=True)
class Suite:
    """One benchmark suite.

    ``default_n`` images per seed (sized so a 2-core CPU finishes in minutes); ``batch`` images per explainer call;
    ``gradcam_layer`` the conv block Grad-CAM reads; ``baseline_options`` per-baseline settings (extremal
    perturbation's lengths scaled to the image, :func:`extremal_options`; cheap ones for the expensive photo model);
    ``curve_fills`` the fills of the deletion/insertion curves (the first is the headline ``deletion_auc``, the
    others add ``deletion_auc_<fill>``); ``amortized`` whether a shipped amortized explainer is expected; ``patch``
    the 1-minimality cell side; ``instances`` whether the multi-instance procedure runs; ``min_prob`` its
    acceptance threshold.
    """

    name: str
    model: str
    default_n: int
    batch: int
    gradcam_layer: str
    data: str
    baseline_options: dict = field(default_factory=dict)
    curve_fills: tuple[str, ...] = ("zero", "blur")
    patch: int = 4               # 1-minimality grid cell, about 1/8-1/16 of the image side
    amortized: bool = False
    instances: bool = False
    min_prob: float = MIN_PROB   # instance suites: the search's acceptance threshold (explain_instances' min_prob)


SUITES: dict[str, Suite] = {
    "shapes": Suite("shapes", "shapes-cnn", default_n=64, batch=64, gradcam_layer="features.relu4",
                    data="make_shapes(n, seed): 64×64 generated shapes on clutter, exact object masks",
                    baseline_options={"extremal-perturbation": extremal_options(64)}, amortized=True),
    "fmnist": Suite("fmnist", "fmnist-cnn", default_n=64, batch=64, gradcam_layer="features.relu4", patch=2,
                    data="Fashion-MNIST test split, seeded sample of the items outside the shipped tuning subset "
                         "(the shipped subset itself when the full split is not installed)",
                    baseline_options={"extremal-perturbation": extremal_options(28)}, amortized=True),
    "canvases": Suite("canvases", "shapes-cnn", default_n=8, batch=8, gradcam_layer="features.relu4", patch=8,
                      data=f"make_canvases(n, seed, n_instances={CANVAS_INSTANCES}): 96×96, one class per canvas, "
                           "exact instance masks", instances=True,
                      baseline_options={"extremal-perturbation": extremal_options(96)}),
    # batch 1: the per-image regime's own setting, and seconds per image then need no second timing run
    # default: the photos of every source but the benchmark-only opencv-doc (the same set wherever the model runs)
    "photos": Suite("photos", "efficientnet-lite0", default_n=len(CORE_NAMES), batch=1,
                    gradcam_layer="net._blocks.15",
                    data=f"the first n available of the {len(NAMES)} catalogue photos "
                         "(actmatch_lite.data.photo_suite; the last "
                         f"{len(NAMES) - len(CORE_NAMES)} need {', '.join(BENCHMARK_ONLY_SOURCES)}) at 224×224 "
                         "(fixed; the seed changes only the explainer and the random baselines)",
                    baseline_options=PHOTO_BASELINE_OPTIONS,
                    patch=16),
    "photo-composites": Suite("photo-composites", "efficientnet-lite0", default_n=6, batch=1,
                              gradcam_layer="net._blocks.15",
                              data=f"make_photo_composites(n, seed, n_instances={COMPOSITE_INSTANCES}): 224×224, "
                                   "copies of Chelsea's cat on a real texture (grass, gravel, brick) along a diagonal, "
                                   "exact instance masks", instances=True, patch=16,
                              # EfficientNet gives several composites p < 0.7 as a whole: 0.7 would stop them at once
                              min_prob=0.5,
                              baseline_options=PHOTO_BASELINE_OPTIONS),
}


@dataclass(frozen=True)
class SuiteData:
    """Images ``x (n, C, H, W)``; ``gt (n, 1, H, W)`` bool object masks or None; ``instances``: per image a
    ``(N_i, 1, H, W)`` bool tensor of instance masks, or None; ``names``: one label per image."""

    x: torch.Tensor
    gt: torch.Tensor | None
    instances: tuple[torch.Tensor, ...] | None
    names: tuple[str, ...]
    source: str


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise InputError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def _fmnist(n: int, seed: int) -> SuiteData:
    if find_fashion_mnist("test") is not None:
        x, _ = load_fashion_mnist("test")
        with np.load(data_file(SUBSET_FILE)) as z:
            tuned = set(z["indices"].tolist())      # the shipped subset is where presets were tuned
        pool = np.array([i for i in range(len(x)) if i not in tuned])
        source = "fashion-mnist test split minus the shipped subset"
    else:
        x, _ = load_fmnist_subset()
        pool = np.arange(len(x))
        source = "shipped fashion-mnist test subset (full split not installed; presets were tuned on it)"
    pick = np.sort(np.random.default_rng(seed).choice(pool, n, replace=False))
    return SuiteData(x[torch.from_numpy(pick)], None, None, tuple(f"test[{i}]" for i in pick), source)


def load_suite_data(suite: Suite, n: int, seed: int, photos: tuple[str, ...] | None = None) -> SuiteData:
    """The ``n`` images of ``suite`` for data seed ``seed`` (photos: the first ``n`` available catalogue photos,
    any seed; more than are installed is an :class:`InputError` naming what to install).

    ``photos``: for the photos suite only, these catalogue photos by name instead of the first ``n``
    (``n`` must then be their number)."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if photos is not None:
        if suite.name != "photos":
            raise InputError(f"photos names photos of the 'photos' suite, not of {suite.name!r}; drop it")
        if len(photos) != n:
            raise InputError(f"n is {n} but {len(photos)} photos are named; give one or the other")
        x = torch.cat([load_suite_photo(p) for p in photos])
        return SuiteData(x, None, None, tuple(photos), f"actmatch_lite.data.photo_suite: {', '.join(photos)}")
    if suite.name == "shapes":
        d = make_shapes(n, seed=seed)
        return SuiteData(d.x, d.masks, None, tuple(f"shapes[{seed}:{i}]" for i in range(n)), "make_shapes")
    if suite.name == "fmnist":
        return _fmnist(n, seed)
    if suite.name == "canvases":
        c = make_canvases(n, seed=seed, n_instances=CANVAS_INSTANCES)
        inst = tuple(c.instance_masks[i][c.labels[i] >= 0] for i in range(n))
        return SuiteData(c.x, c.masks, inst, tuple(f"canvas[{seed}:{i}]" for i in range(n)), "make_canvases")
    if suite.name == "photo-composites":
        cs = make_photo_composites(n, seed, n_instances=COMPOSITE_INSTANCES)
        inst = tuple(c.instance_masks for c in cs)
        return SuiteData(torch.cat([c.x for c in cs]), torch.stack([m.any(0) for m in inst]), inst,
                         tuple(f"composite[{seed}:{i}]" for i in range(n)), "make_photo_composites")
    if suite.name == "photos":
        x, names = suite_photos(n=n)
        return SuiteData(x, None, None, names, f"actmatch_lite.data.photo_suite, the first {n}: {', '.join(names)}")
    raise InputError(f"no data loader for suite {suite.name!r}")


def photo_records(lm, x: torch.Tensor, names) -> list[dict]:
    """Per image ``{"name", "top1", "class_name", "p", "confident"}``: the model's top-1 class, its softmax
    probability and whether ``p >= CONFIDENT`` (0.5), so that tables can cover every photo and the confident ones."""
    y, p = lm.predict(x)
    return [{"name": name, "top1": int(c), "class_name": lm.class_names[int(c)], "p": float(q),
             "confident": bool(q >= CONFIDENT)} for name, c, q in zip(names, y.tolist(), p.tolist())]
