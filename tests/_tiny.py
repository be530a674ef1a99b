"""Tiny hand-seeded classifiers shared by the explainer tests (16x16 RGB, 3 classes, runs in milliseconds)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from actmatch_lite.spec import LoadedModel

TAPS = ("relu1", "relu2")


class TinyCNN(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)   # in place on purpose: capture must cope
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6, 3))

    def forward(self, x):
        return self.head(self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x))))))


def tiny_loaded(seed: int = 0) -> LoadedModel:
    clf = TinyCNN(seed).eval()
    return LoadedModel(name="tiny", clf=clf, class_names=("a", "b", "c"), taps=TAPS, tap_weights=(1.0, 2.0),
                       input_size=(16, 16), min_size=(8, 8), channels=3, mean=(0.5, 0.5, 0.5), preset="shapes",
                       preprocess=lambda image: torch.as_tensor(image))


def images(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def no_hooks(model) -> bool:
    """No hook left on ``model``'s modules, and no global module hook (a baseline or explainer cleaned up)."""
    hook_dicts = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    local = all(not getattr(mod, d) for mod in model.modules() for d in hook_dicts)
    global_ = not (torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks
                   or torch_module._global_backward_hooks)
    return local and global_
