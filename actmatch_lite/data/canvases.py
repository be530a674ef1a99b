"""Multi-instance canvases: several shapes on one cluttered image, each with its own exact mask.

A single-class canvas holds several instances of ONE class (the paper's "group of otters"): an
explanation may keep any one of them, and the multi-instance procedure should find them all. With
``mixed=True`` the instances have different classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from actmatch_lite.data.shapes import CHUNK, RADIUS_FRAC, SHAPE_CLASSES, add_noise, clutter, shape_masks, target_colours

# Instances keep the pixel sizes shapes-cnn was trained on (8-18 px radius), whatever the canvas size.
TRAIN_SIZE = 64
RADIUS_PX = (RADIUS_FRAC[0] * TRAIN_SIZE, RADIUS_FRAC[1] * TRAIN_SIZE)
GAP_PX = 3            # minimum free pixels between the bounding circles of two instances
MAX_TRIES = 200       # placement attempts before the radii are shrunk
SHRINK = 0.85         # radius factor applied when an instance does not fit


@dataclass(frozen=True)
class Canvases:
    """Generated canvases.

    ``x (n, 3, H, W)`` float32 in [0, 1]; ``labels (n, K)`` int64 class of each instance, -1 where a canvas
    has fewer than ``K`` instances; ``instance_masks (n, K, 1, H, W)`` bool, pairwise disjoint; ``y (n,)``
    the canvas class (the shared class, or the first instance's when mixed).
    """

    x: torch.Tensor
    labels: torch.Tensor
    instance_masks: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...] = SHAPE_CLASSES

    @property
    def masks(self) -> torch.Tensor:
        """Union of the instance masks ``(n, 1, H, W)``."""
        return self.instance_masks.any(1)

    def __len__(self) -> int:
        return len(self.y)


def _place(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    """``k`` non-overlapping discs ``(k, 3)`` = (cx, cy, r) inside a ``size`` square, ``GAP_PX`` apart."""
    scale = 1.0
    while True:
        discs: list[tuple[float, float, float]] = []
        for _ in range(MAX_TRIES):
            r = rng.uniform(*RADIUS_PX) * scale
            cx, cy = rng.uniform(r, size - r, 2)
            if all(np.hypot(cx - a, cy - b) >= r + s + GAP_PX for a, b, s in discs):
                discs.append((cx, cy, r))
                if len(discs) == k:
                    return np.array(discs, dtype=np.float32)
        scale *= SHRINK


def make_canvases(n: int, seed: int, n_instances: tuple[int, int] = (2, 3), size: int = 96,
                  mixed: bool = False) -> Canvases:
    """``n`` canvases ``(3, size, size)`` with ``n_instances[0]..n_instances[1]`` shapes each (inclusive).

    Canvas classes are balanced. Instances do not overlap (their bounding circles stay ``GAP_PX`` apart), are
    painted opaque after the clutter, and keep the 8-18 px radius of the single-shape data.
    """
    lo, hi = n_instances
    if not 1 <= lo <= hi:
        raise ValueError(f"n_instances must be (min, max) with 1 <= min <= max, got {n_instances}")
    if size < 2 * (RADIUS_PX[1] + GAP_PX):
        raise ValueError(f"size must be at least {2 * (RADIUS_PX[1] + GAP_PX):.0f} px to hold an instance, got {size}")
    if mixed and hi > len(SHAPE_CLASSES):
        raise ValueError(f"mixed canvases need distinct classes: at most {len(SHAPE_CLASSES)} instances")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    counts = rng.integers(lo, hi + 1, n)
    labels = np.full((n, hi), -1, dtype=np.int64)
    discs = np.zeros((n, hi, 3), dtype=np.float32)
    for i in range(n):
        k = counts[i]
        if mixed:
            others = rng.permutation(np.delete(np.arange(len(SHAPE_CLASSES)), y[i]))[:k - 1]
            labels[i, :k] = np.concatenate([[y[i]], others])
        else:
            labels[i, :k] = y[i]
        discs[i, :k] = _place(rng, k, size)
    valid = labels >= 0
    flat = np.flatnonzero(valid)
    theta = rng.uniform(0, 2 * np.pi, len(flat))
    colour = target_colours(rng, len(flat))
    d = discs.reshape(-1, 3)[flat]
    m = np.zeros((n * hi, size, size), dtype=bool)
    m[flat] = shape_masks(labels.reshape(-1)[flat], d[:, 0], d[:, 1], d[:, 2], theta, size)
    m = m.reshape(n, hi, 1, size, size)
    img = np.concatenate([add_noise(rng, clutter(rng, min(CHUNK, n - i), size)) for i in range(0, n, CHUNK)])
    paint = np.zeros((n * hi, 3), dtype=np.float32)
    paint[flat] = colour
    paint = paint.reshape(n, hi, 3)
    for j in range(hi):  # instances are disjoint, so painting order does not matter
        img = np.where(m[:, j], paint[:, j, :, None, None], img)
    return Canvases(torch.from_numpy(img), torch.from_numpy(labels), torch.from_numpy(m),
                    torch.from_numpy(y.astype(np.int64)))
