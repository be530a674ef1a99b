"""``shapes-cnn``: a small CNN for the generated shapes, ending in global max pooling.

Global max pooling makes the decision translation invariant and size agnostic: the score of a class is
its strongest local detector response anywhere in the image, so the same network classifies 64x64 single
shapes and larger multi-instance canvases.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from actmatch_lite.checksums import load_state_dict
from actmatch_lite.data.photos import to_image_tensor
from actmatch_lite.data.shapes import SHAPE_CLASSES
from actmatch_lite.models.pooling import MaxPool2x2
from actmatch_lite.spec import LoadedModel

WIDTHS = (16, 32, 64, 96)   # conv channels, shallow to deep (about 85k parameters in all)
KERNEL = 3
TAPS = ("features.relu1", "features.relu2", "features.relu3", "features.relu4")
TAP_WEIGHTS = (1.0, 2.0, 4.0, 8.0)  # alpha grows with depth, as in the paper's 1, 2, 2, 4, 8
INPUT_SIZE = (64, 64)
MIN_SIZE = (32, 32)          # three 2x poolings leave a 4x4 map for the last conv
WEIGHTS_FILE = "shapes_cnn.pt"


class ShapesCNN(nn.Module):
    """``x (B, 3, H, W)`` in [0, 1] -> logits ``(B, num_classes)``.

    Four 3x3 conv + BatchNorm + ReLU stages (2x max pooling after the first three), global max pooling,
    one linear layer. Normalisation by the dataset ``mean`` / ``std`` (buffers, saved with the weights)
    happens inside, so callers work in pixel space.
    """

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25))
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 3
        for i, c_out in enumerate(widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c_out, KERNEL, padding=KERNEL // 2, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{i}"] = nn.ReLU()
            if i < len(widths):
                layers[f"pool{i}"] = MaxPool2x2()
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features((x - self.mean) / self.std)
        return self.fc(self.pool(z).flatten(1))


def preprocess(image) -> torch.Tensor:
    """Any image -> ``(1, 3, H, W)`` in [0, 1]; no resize (global max pooling accepts any size >= MIN_SIZE).

    Values are scaled by their type's range, never clamped (uint8 / 255, uint16 / 65535, bool 0 / 1; floats must
    lie in [0, 1]; signed integers are refused): :func:`actmatch_lite.data.photos.to_image_tensor`.
    """
    return to_image_tensor(image, channels=3)


def load(pretrained: bool = True):
    """``shapes-cnn`` as a :class:`~actmatch_lite.spec.LoadedModel` (not yet frozen or moved).

    ``pretrained=False`` gives random weights (default normalisation buffers).
    """
    clf = ShapesCNN()
    if pretrained:
        clf.load_state_dict(load_state_dict(WEIGHTS_FILE))
    return LoadedModel(
        name="shapes-cnn", clf=clf, class_names=SHAPE_CLASSES, taps=TAPS, tap_weights=TAP_WEIGHTS,
        input_size=INPUT_SIZE, min_size=MIN_SIZE, channels=3,
        mean=tuple(float(v) for v in clf.mean.flatten()), preset="shapes", preprocess=preprocess)
