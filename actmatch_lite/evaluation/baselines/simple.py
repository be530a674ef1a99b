"""Baselines that do not look at the classifier: they set the floor any explanation must beat.

Each returns scores ``(B, 1, H, W)``; ``masks_at_area`` keeps the top ``k``. The signature matches the
registry (``clf``, ``target``, ``layer`` and ``fill`` are accepted and unused).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite._validate import check_images

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def random_scores(clf: nn.Module | None, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                  fill="zero") -> torch.Tensor:
    """Uniform random scores ``U(0, 1)`` per pixel, drawn on the CPU from a generator seeded with ``seed``.

    The top ``k`` is a uniformly random set of ``k`` pixels: the chance level.
    """
    check_images(x)
    g = torch.Generator().manual_seed(seed)
    return torch.rand(x.shape[0], 1, *x.shape[-2:], generator=g).to(x.device)


def square_scores(clf: nn.Module | None, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                  fill="zero") -> torch.Tensor:
    """``-max(|i - c_i|, |j - c_j|)``: minus the Chebyshev distance to the image centre ``c``.

    The top ``k`` is a centred square (its outermost ring partly filled, top rows first, when ``k`` is not a
    square number): the photographer's prior that the object sits in the middle.
    """
    check_images(x)
    h, w = x.shape[-2:]
    i = (torch.arange(h, dtype=x.dtype, device=x.device) - (h - 1) / 2).abs()
    j = (torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2).abs()
    return -torch.maximum(i[:, None], j[None, :]).expand(x.shape[0], 1, h, w).clone()


def sobel_scores(clf: nn.Module | None, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                 fill="zero") -> torch.Tensor:
    """Edge magnitude ``sqrt(G_x² + G_y²)`` of the grey image (channel mean) with 3×3 Sobel kernels.

    Replicate padding, so the image border is not an edge. An edge detector is the classic reminder
    (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018) that a map can look plausible while
    ignoring the model.
    """
    check_images(x)
    grey = F.pad(x.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([SOBEL_X, SOBEL_X.T]).unsqueeze(1).to(x)       # (2, 1, 3, 3): G_x and G_y
    g = F.conv2d(grey, kernels)
    return g.pow(2).sum(1, keepdim=True).sqrt()
