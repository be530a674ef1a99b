"""What ``load_model`` hands back: a frozen classifier plus everything needed to explain it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LoadedModel:
    """A frozen classifier and its metadata.

    ``clf`` takes images in [0, 1] of shape ``(B, channels, H, W)`` and returns logits ``(B, K)``;
    it applies its own normalisation, so masking happens in pixel space with an explicit fill.
    """

    name: str
    clf: nn.Module
    class_names: tuple[str, ...]
    taps: tuple[str, ...]            # default tap layers, names for ``clf.get_submodule``
    tap_weights: tuple[float, ...]   # alpha_l, one per tap
    input_size: tuple[int, int]      # (H, W) the model was trained at
    min_size: tuple[int, int]        # smallest (H, W) it accepts
    channels: int
    mean: tuple[float, ...]          # pixel-space dataset mean colour (the "mean" fill)
    preset: str                      # name of the default explainer preset
    preprocess: Callable[..., torch.Tensor]  # image (PIL, ndarray HxW[xC], tensor) -> (1, C, H, W) in [0, 1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-1 class and its probability for a batch ``x (B, C, H, W)`` in [0, 1]."""
        with torch.no_grad():
            p = self.clf(x).softmax(-1)
        conf, y = p.max(-1)
        return y, conf
