"""``fmnist-cnn``: a small Fashion-MNIST CNN in the style of the authors' MNIST network.

A few 3x3 conv + ReLU layers with two poolings and a linear classifier on the 7x7 feature map. Unlike
``shapes-cnn`` it keeps spatial layout to the end (no global pooling), as MNIST-style networks do, so it is
tied to 28x28 inputs.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite.checksums import load_state_dict
from actmatch_lite.data.fmnist import FMNIST_CLASSES
from actmatch_lite.data.photos import to_image_tensor
from actmatch_lite.models.pooling import MaxPool2x2
from actmatch_lite.spec import LoadedModel

# (out channels, pool after?) per conv stage; about 92k parameters in all
STAGES = ((16, True), (32, True), (64, False), (64, False))
KERNEL = 3
TAPS = ("features.relu1", "features.relu2", "features.relu3", "features.relu4")
TAP_WEIGHTS = (1.0, 2.0, 4.0, 8.0)  # alpha grows with depth, as in the paper's 1, 2, 2, 4, 8
INPUT_SIZE = (28, 28)
WEIGHTS_FILE = "fmnist_cnn.pt"


class FashionCNN(nn.Module):
    """``x (B, 1, 28, 28)`` in [0, 1] -> logits ``(B, 10)``; normalises with its ``mean`` / ``std`` buffers."""

    def __init__(self, num_classes: int = len(FMNIST_CLASSES), stages: tuple[tuple[int, bool], ...] = STAGES):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 1, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, 1, 1, 1), 0.25))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in, side = 1, INPUT_SIZE[0]
        for i, (c_out, pool) in enumerate(stages, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{i}"] = nn.ReLU()
            if pool:
                layers[f"pool{i}"] = MaxPool2x2()
                side //= 2
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.fc = nn.Linear(c_in * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features((x - self.mean) / self.std).flatten(1))


def preprocess(image) -> torch.Tensor:
    """Any image -> ``(1, 1, 28, 28)`` grey in [0, 1] (resized when it is another size).

    Values are scaled by their type's range, never clamped (uint8 / 255, uint16 / 65535, bool 0 / 1; floats must
    lie in [0, 1]; signed integers are refused): :func:`actmatch_lite.data.photos.to_image_tensor`.
    """
    x = to_image_tensor(image, channels=1)
    if tuple(x.shape[-2:]) != INPUT_SIZE:
        x = F.interpolate(x, size=INPUT_SIZE, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return x


def load(pretrained: bool = True):
    """``fmnist-cnn`` as a :class:`~actmatch_lite.spec.LoadedModel` (not yet frozen or moved)."""
    clf = FashionCNN()
    if pretrained:
        clf.load_state_dict(load_state_dict(WEIGHTS_FILE))
    return LoadedModel(
        name="fmnist-cnn", clf=clf, class_names=FMNIST_CLASSES, taps=TAPS, tap_weights=TAP_WEIGHTS,
        input_size=INPUT_SIZE, min_size=INPUT_SIZE, channels=1,
        mean=tuple(float(v) for v in clf.mean.flatten()), preset="fmnist", preprocess=preprocess)
