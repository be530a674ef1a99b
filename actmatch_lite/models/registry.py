"""``load_model(name)``: every classifier of the package behind one call, frozen and ready to explain."""
from __future__ import annotations

import dataclasses
import importlib

import torch

from actmatch_lite.seeding import pick_device
from actmatch_lite.spec import LoadedModel

# name -> (module, loader function). Modules are imported on demand, so optional dependencies
# (efficientnet) are needed only by the model that uses them.
_LOADERS: dict[str, tuple[str, str]] = {
    "shapes-cnn": ("actmatch_lite.models.shapes_cnn", "load"),
    "fmnist-cnn": ("actmatch_lite.models.fmnist_cnn", "load"),
    "efficientnet-lite0": ("actmatch_lite.models.imagenet", "load_efficientnet_lite0"),
    "resnet18": ("actmatch_lite.models.imagenet", "load_resnet18"),
}


def available_models() -> tuple[str, ...]:
    """Names accepted by :func:`load_model`."""
    return tuple(_LOADERS)


def load_model(name: str, *, device: str | torch.device | None = None, **options) -> LoadedModel:
    """Load a classifier by name, in eval mode with ``requires_grad=False`` on every parameter.

    ``options`` go to the model's loader: ``pretrained=False`` (random weights, every model),
    ``weights_path=`` (``resnet18``). ``device`` defaults to CUDA when available, else the CPU.
    The returned ``clf`` is the package's own copy: freezing it changes no caller's model.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(_LOADERS)}")
    module, fn = _LOADERS[name]
    loaded: LoadedModel = getattr(importlib.import_module(module), fn)(**options)
    clf = loaded.clf.to(pick_device(device)).eval()
    for p in clf.parameters():
        p.requires_grad_(False)
    return dataclasses.replace(loaded, clf=clf)
