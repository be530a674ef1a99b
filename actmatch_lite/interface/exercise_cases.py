"""Seeded cases of the classroom exercises: tiny models and the argument makers of :mod:`exercise_catalogue`.

Every ``<what>_args(gen)`` draws one argument tuple from the CPU generator ``gen`` (so every learner sees the
same cases); ``check`` calls it :data:`actmatch_lite.interface.exercises.CASES` times on one generator seeded with
:data:`actmatch_lite.interface.exercises.SEED`. Several cases are built to catch a typical slip (a tie, an empty mask, a
pixel exactly at the threshold); their docstrings say which.
"""
from __future__ import annotations

import torch
from torch import nn


# -- tiny models and inputs ------------------------------------------------------------------------------
def _tiny_cnn(gen: torch.Generator) -> nn.Sequential:
    """A seeded 3-layer CNN for 1-channel 8×8 images, with named layers and one in-place ReLU."""
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(1, 4, 3, padding=1))
    model.add_module("relu1", nn.ReLU(inplace=True))
    model.add_module("conv2", nn.Conv2d(4, 6, 3, padding=1))
    model.add_module("relu2", nn.ReLU())
    model.add_module("pool", nn.AdaptiveAvgPool2d(2))
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(24, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


def _linear_classifier(gen: torch.Generator, channels: int = 1, side: int = 6, classes: int = 3) -> nn.Module:
    """A seeded linear classifier on tiny images: strong enough that masking changes its decision."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, classes))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 2.0)
    return model.eval()


def _soft_mask(gen: torch.Generator, b: int = 2, h: int = 7, w: int = 9) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=gen)


def _binary_mask(gen: torch.Generator, b: int = 2, h: int = 6, w: int = 6) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=gen) > 0.5


def _post_relu(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Post-ReLU-like activations with no all-zero channel vector (channel 0 is kept positive)."""
    a = torch.randn(shape, generator=gen).relu()
    a[:, 0] += 0.1
    return a


def _labels(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random targets ``(B,)`` for ``logits (B, classes)``, image 0's never its argmax and image 1's always it.

    An answer that reads ``logits.argmax`` instead of ``target`` then fails on image 0.
    """
    classes = logits.shape[1]
    y = torch.randint(classes, (len(logits),), generator=gen)
    top = logits.argmax(1)
    y[0] = (top[0] + 1 + torch.randint(classes - 1, (1,), generator=gen)[0]) % classes
    y[1] = top[1]
    return y


# -- argument makers -------------------------------------------------------------------------------------
def apply_mask_args(gen: torch.Generator) -> tuple:
    x = torch.rand(2, 3, 5, 5, generator=gen)
    return x, torch.rand(2, 1, 5, 5, generator=gen), torch.rand(2, 3, 5, 5, generator=gen)


def record_layer_args(gen: torch.Generator) -> tuple:
    layer = ("conv1", "relu1", "conv2", "relu2")[int(torch.randint(4, (1,), generator=gen))]
    return _tiny_cnn(gen), torch.rand(2, 1, 8, 8, generator=gen), layer


def cross_entropy_args(gen: torch.Generator) -> tuple:
    logits = torch.randn(3, 5, generator=gen) * 3
    return logits, _labels(logits, gen)


def kl_args(gen: torch.Generator) -> tuple:
    temperature = float(torch.tensor([1.0, 2.0, 4.0])[torch.randint(3, (1,), generator=gen)])
    return torch.randn(3, 6, generator=gen) * 3, torch.randn(3, 6, generator=gen) * 3, temperature


def activation_pair_args(gen: torch.Generator) -> tuple:
    shape = (2, 5, 4, 6)
    return _post_relu(gen, shape), _post_relu(gen, shape)


def soft_mask_args(gen: torch.Generator) -> tuple:
    return (_soft_mask(gen),)


def area_excess_args(gen: torch.Generator) -> tuple:
    return _soft_mask(gen), float(torch.rand(1, generator=gen)) * 0.6


def threshold_args(gen: torch.Generator) -> tuple:
    """A soft mask with one pixel exactly at the threshold: ``m_soft > t`` leaves it out, ``>=`` would keep it."""
    m_soft = _soft_mask(gen)
    threshold = float(torch.tensor([0.5, 0.3, 0.7])[torch.randint(3, (1,), generator=gen)])
    m_soft[0, 0, 0, 0] = threshold
    return m_soft, threshold


def tv_args(gen: torch.Generator) -> tuple:
    return _soft_mask(gen), (4, 8)[int(torch.randint(2, (1,), generator=gen))]


def robustness_loss_args(gen: torch.Generator) -> tuple:
    k, b, classes = 3, 2, 5
    return torch.randn(k, b, classes, generator=gen) * 3, torch.randint(classes, (b,), generator=gen)


def necessity_loss_args(gen: torch.Generator) -> tuple:
    b, classes = 4, 5
    logits_x = torch.randn(b, classes, generator=gen) * 3
    logits_comp = logits_x - torch.rand(b, classes, generator=gen) * 3   # drops around the margin
    return logits_x, logits_comp, _labels(logits_x, gen), float(torch.rand(1, generator=gen)) * 2


def classifier_mask_args(gen: torch.Generator) -> tuple:
    clf = _linear_classifier(gen)
    return clf, torch.rand(4, 1, 6, 6, generator=gen), _binary_mask(gen, b=4)


def mask_pair_args(gen: torch.Generator) -> tuple:
    """Mask pairs; in pair 0 both masks are empty, where IoU is 1 by definition (0/0 would be NaN)."""
    m, gt = _binary_mask(gen, b=3), _binary_mask(gen, b=3)
    m[0], gt[0] = False, False
    return m, gt


def pointing_args(gen: torch.Generator) -> tuple:
    """Soft masks with ties at their maximum: mask 0 is quantised to quarters (a plateau of maxima); mask 1 has
    exactly two maxima, one on the object and one off it (hit 1/2). Picking one argmax fails on them."""
    m_soft, gt = torch.rand(3, 1, 6, 6, generator=gen), _binary_mask(gen, b=3)
    m_soft[0] = (m_soft[0] * 4).round() / 4
    on, off = torch.randperm(36, generator=gen)[:2]
    gt[1].view(-1)[on], gt[1].view(-1)[off] = True, False
    m_soft[1] *= 0.9
    m_soft[1].view(-1)[torch.stack([on, off])] = 1.0
    return m_soft, gt


def deletion_args(gen: torch.Generator) -> tuple:
    """Step counts that do not divide the 36 pixels, so ``k_s = round(s·HW/S)`` differs from its floor."""
    clf = _linear_classifier(gen)
    steps = (5, 7)[int(torch.randint(2, (1,), generator=gen))]
    return clf, torch.rand(2, 1, 6, 6, generator=gen), torch.rand(2, 1, 6, 6, generator=gen), steps


def instances_args(gen: torch.Generator) -> tuple:
    """Two canvases of disjoint stripe instances; explanations are noisy copies, some missing. On the first
    canvas one explanation covers two instances at once (one-to-one matching counts it once) and one is empty
    (it matches nothing); on the second, one explanation is a 4-pixel piece of its instance (IoU 1/4, matched by
    its precision)."""
    explanations, instances = [], []
    for canvas in range(2):
        n = int(torch.randint(2, 4, (1,), generator=gen))
        gt = torch.zeros(n, 8, 8, dtype=torch.bool)
        for i in range(n):
            gt[i, :, 3 * i:3 * i + 2] = True
        order = torch.randperm(n, generator=gen)
        e = gt[order] | (torch.rand(n, 8, 8, generator=gen) > 0.85)
        if canvas == 0:
            e = torch.cat([(gt[0] | gt[1])[None], e[2:]])
        else:
            e[0] = gt[order[0]] & (torch.arange(64).view(8, 8) < 16)   # top 2 rows of a 2-pixel-wide stripe
        e = e[: max(1, len(e) - int(torch.randint(2, (1,), generator=gen)))]
        if canvas == 0:
            e = torch.cat([e, torch.zeros(1, 8, 8, dtype=torch.bool)])
        explanations.append(e)
        instances.append(gt)
    return explanations, instances


def vacuous_args(gen: torch.Generator) -> tuple:
    """A tiny linear classifier, 4 images and a fill (zero, a constant, or per-image noise). Image 0's own class
    always differs from the fill's, so ``y = argmax clf(x)`` (sufficiency that is not vacuous) fails on it."""
    clf = _linear_classifier(gen)
    x = torch.rand(4, 1, 6, 6, generator=gen)
    kind = int(torch.randint(3, (1,), generator=gen))
    fill = (torch.zeros_like(x), torch.full_like(x, float(torch.rand(1, generator=gen))),
            torch.rand(x.shape, generator=gen))[kind]
    with torch.no_grad():
        for _ in range(100):
            if clf(x[:1]).argmax(1) != clf(fill[:1]).argmax(1):
                break
            x[0] = torch.rand(x[0].shape, generator=gen)
    return clf, x, fill
