"""What every baseline does first: check the images, resolve ``y*`` and build the fill image."""
from __future__ import annotations

import torch
from torch import nn

from actmatch_lite._validate import check_images
from actmatch_lite.evaluation.metrics._common import get_fill, target_class


def prepare(clf: nn.Module, x: torch.Tensor, target, fill) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y* (B,), fill image (B, C, H, W))``; ``y*`` is ``target`` or the predicted class.

    ``fill`` is ``"zero"``, ``"blur"``, a float, or a tensor: pass ``make_fill(x, "mean", mean=loaded.mean)`` for
    a dataset's mean colour (the name ``"mean"`` alone is refused: a baseline does not know the dataset's mean).
    """
    check_images(x)
    return target_class(clf, x, target), get_fill(x, fill, None)
