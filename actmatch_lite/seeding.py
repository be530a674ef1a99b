"""One place to make a run reproducible."""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from actmatch_lite._validate import InputError


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU ``torch.Generator`` seeded with ``seed``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (a ``torch.device`` or a name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``), else (or for
    ``"auto"``) CUDA when available, else the CPU. A name torch does not know, or a GPU this machine lacks, raises
    ``InputError`` saying what is available."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (a GPU when "
                         "there is one)") from err
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise InputError(f"device {device!r} was asked for, but torch sees {count} CUDA GPU(s) here: use 'cpu', "
                             "or 'auto' to take a GPU only when there is one")
    return dev


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
