"""What every baseline does first: check the images, resolve ``y*`` and build the fill image."""
from __future__ import annotations

import torch
from torch import nn

from .._validate import check_images
from ..fill import make_fill
from ..metrics._common import target_class


def prepare(clf: nn.Module, x: torch.Tensor, target, fill) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y* (B,), fill image (B, C, H, W))``; ``y*`` is ``target`` or the predicted class.

    ``fill`` is a name from ``actmatch_lite.fill.FILLS`` (``"mean"`` means 0.5 grey here), a float, or a
    tensor: pass ``make_fill(x, "mean", mean=loaded.mean)`` for a dataset's mean colour.
    """
    check_images(x)
    return target_class(clf, x, target), make_fill(x, fill)
