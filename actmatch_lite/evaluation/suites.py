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
from actmatch_lite.data import load_photo, make_canvases, make_shapes
from actmatch_lite.data.fmnist import SUBSET_FILE, find_fashion_mnist, load_fashion_mnist, load_fmnist_subset
from actmatch_lite.paths import data_file

DEFAULT_SEEDS = (101, 102, 103)
# Photos showing one object (the textures grass/gravel/brick are backgrounds, not things a classifier names).
OBJECT_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "horse", "camera")
CANVAS_INSTANCES = (2, 3)   # instances per canvas, inclusive: the paper's "group of otters", kept small


@dataclass(frozen=True)
class Suite:
    """One benchmark suite.

    ``default_n`` images per seed (sized so a 2-core CPU finishes in minutes); ``batch`` images per explainer call;
    ``gradcam_layer`` the conv block Grad-CAM reads; ``baseline_options`` per-baseline settings (cheap ones for
    the expensive photo model); ``curve_fills`` the fills of the deletion/insertion curves (the first is the headline ``deletion_auc``, the
    others add ``deletion_auc_<fill>``); ``amortized`` whether
    a shipped amortized explainer is expected; ``patch`` the 1-minimality cell side; ``instances`` whether the multi-instance procedure runs.
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


SUITES: dict[str, Suite] = {
    "shapes": Suite("shapes", "shapes-cnn", default_n=64, batch=64, gradcam_layer="features.relu4",
                    data="make_shapes(n, seed): 64×64 generated shapes on clutter, exact object masks",
                    amortized=True),
    "fmnist": Suite("fmnist", "fmnist-cnn", default_n=64, batch=64, gradcam_layer="features.relu4", patch=2,
                    data="Fashion-MNIST test split, seeded sample of the items outside the shipped tuning subset "
                         "(the shipped subset itself when the full split is not installed)",
                    amortized=True),
    "canvases": Suite("canvases", "shapes-cnn", default_n=8, batch=8, gradcam_layer="features.relu4", patch=8,
                      data=f"make_canvases(n, seed, n_instances={CANVAS_INSTANCES}): 96×96, one class per canvas, "
                           "exact instance masks", instances=True),
    # batch 1: the per-image regime's own setting, and seconds per image then need no second timing run
    "photos": Suite("photos", "efficientnet-lite0", default_n=3, batch=1, gradcam_layer="net._blocks.15",
                    data=f"the first n of the scikit-image photos {', '.join(OBJECT_PHOTOS)} at 224×224 (fixed; "
                         "the seed changes only the explainer and the random baselines)",
                    # a fraction of each baseline's default work: EfficientNet-Lite0 costs ~20 ms a pass on 2 cores
                    baseline_options={"integrated-gradients": {"n_steps": 16}, "rise": {"n_masks": 400},
                                      "meaningful-perturbation": {"steps": 100},
                                      "occlusion": {"window": 32, "stride": 16}},
                    patch=16),
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


def load_suite_data(suite: Suite, n: int, seed: int) -> SuiteData:
    """The ``n`` images of ``suite`` for data seed ``seed`` (photos: the first ``n`` object photos, any seed)."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if suite.name == "shapes":
        d = make_shapes(n, seed=seed)
        return SuiteData(d.x, d.masks, None, tuple(f"shapes[{seed}:{i}]" for i in range(n)), "make_shapes")
    if suite.name == "fmnist":
        return _fmnist(n, seed)
    if suite.name == "canvases":
        c = make_canvases(n, seed=seed, n_instances=CANVAS_INSTANCES)
        inst = tuple(c.instance_masks[i][c.labels[i] >= 0] for i in range(n))
        return SuiteData(c.x, c.masks, inst, tuple(f"canvas[{seed}:{i}]" for i in range(n)), "make_canvases")
    if suite.name == "photos":
        if n > len(OBJECT_PHOTOS):
            raise InputError(f"the photos suite has {len(OBJECT_PHOTOS)} photos; got n={n}")
        names = OBJECT_PHOTOS[:n]
        return SuiteData(torch.cat([load_photo(p) for p in names]), None, None, names, "skimage.data photos")
    raise InputError(f"no data loader for suite {suite.name!r}")
