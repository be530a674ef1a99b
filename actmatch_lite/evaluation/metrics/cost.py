"""M14 cost ↓: wall-clock seconds per image on the machine at hand (report the machine with the number)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

DIRECTION = {"time_per_image": "lower"}


def _sync(x: torch.Tensor) -> None:
    # CUDA runs asynchronously: without a sync the clock stops before the work is done.
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def time_per_image(fn: Callable[[torch.Tensor], object], x: torch.Tensor, repeats: int = 3, *,
                   warmup: int = 1) -> float:
    """M14 ↓. ``median over repeats of (seconds for fn(x)) / B`` for a batch ``x (B, ...)``.

    ``warmup`` untimed calls come first (lazy initialisation, caches). Time batch 1 and batch 64 separately:
    the per-image cost differs.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        _sync(x)
        start = time.perf_counter()
        fn(x)
        _sync(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / x.shape[0]
