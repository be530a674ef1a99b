"""One place to make a run reproducible."""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU ``torch.Generator`` seeded with ``seed``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def deterministic_kernels() -> Iterator[None]:
    """cuDNN's deterministic algorithms inside the block; the caller's cuDNN settings come back on exit.

    On a GPU, cuDNN picks convolution algorithms by speed, and some accumulate gradients with atomic adds in
    whatever order threads finish, so two runs of the same seeded mask training drift apart. On an H200, before
    this and ``masknet.upsample_bilinear``, the masks of two identical calls on one shapes batch overlapped with
    IoU as low as 0.24. The CPU is unaffected.
    """
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved
