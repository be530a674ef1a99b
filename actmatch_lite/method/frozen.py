"""Freeze a caller's classifier for the duration of a block and hand it back exactly as it came."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from actmatch_lite.seeding import deterministic_kernels


@contextmanager
def frozen(clf: nn.Module) -> Iterator[nn.Module]:
    """Put ``clf`` in eval mode with no parameter gradients inside the block, with deterministic GPU kernels.

    On exit (normal or through an exception) every module's ``training`` flag and every parameter's
    ``requires_grad`` flag are restored, and so are cuDNN's settings (:func:`deterministic_kernels`). Weights are
    never written. This is the only place the package freezes a classifier.
    """
    if not isinstance(clf, nn.Module):
        raise TypeError(f"the classifier must be a torch.nn.Module, got {type(clf).__name__}")
    modes = {m: m.training for m in clf.modules()}
    flags = {p: p.requires_grad for p in clf.parameters()}
    try:
        with deterministic_kernels():
            clf.eval()
            for p in flags:
                p.requires_grad_(False)
            yield clf
    finally:
        for m, training in modes.items():
            m.training = training
        for p, flag in flags.items():
            p.requires_grad_(flag)
