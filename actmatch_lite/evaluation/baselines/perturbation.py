"""A per-image mask optimised WITHOUT activation matching: the ablation of the paper's key idea.

Meaningful perturbation (Fong & Vedaldi, "Interpretable explanations of black boxes by meaningful
perturbation", ICCV 2017), in its *preservation* form (smallest region that keeps the label)::

    m = upsample(σ(θ)),   e = m ⊙ x + (1 - m) ⊙ fill
    L(θ) = -log p(y* | e) + λ_area · mean(m) + λ_tv · TV(m)
    TV(m) = mean_ij |m_i+1,j - m_ij| + mean_ij |m_i,j+1 - m_ij|

``θ`` are mask logits at ``1 / mask_scale`` of the image resolution (upsampled bilinearly: smooth masks,
fewer unknowns), optimised with Adam, one independent mask per image. Fong & Vedaldi used a blur fill
(``fill="blur"``). Scores are the final soft mask ``m``; it reads **logits** through the cross-entropy.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite.evaluation.baselines._common import prepare
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.frozen import frozen

STEPS = 300          # Fong & Vedaldi optimise for 300-500 iterations
LR = 0.1             # Adam step on the mask logits
AREA_WEIGHT = 1.0    # λ_area: 1 makes removing the whole object (CE ≫ 1) far dearer than keeping it (≤ 1)
TV_WEIGHT = 0.2      # λ_tv: discourages speckle without fighting the object boundary
MASK_SCALE = 4       # the mask logits live on a grid 4× coarser than the image
INIT = 0.5           # initial mask value everywhere: undecided


def tv(m: torch.Tensor) -> torch.Tensor:
    """``TV(m) (B,)``: mean absolute difference between 4-neighbours, rows plus columns."""
    return ((m[..., 1:, :] - m[..., :-1, :]).abs().flatten(1).mean(1)
            + (m[..., :, 1:] - m[..., :, :-1]).abs().flatten(1).mean(1))


def meaningful_perturbation_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                                   fill="zero", steps: int = STEPS, lr: float = LR,
                                   area_weight: float = AREA_WEIGHT, tv_weight: float = TV_WEIGHT,
                                   mask_scale: int = MASK_SCALE, init: float = INIT) -> torch.Tensor:
    """The optimised soft mask ``(B, 1, H, W)`` in [0, 1].

    The loop draws nothing random (constant initialisation), so ``seed`` changes nothing: it is accepted for
    the registry's common signature. The losses are summed over images, and Adam is element-wise, so each
    image's mask evolves exactly as if it were optimised alone.
    """
    y, fill_img = prepare(clf, x, target, fill)
    h, w = x.shape[-2:]
    theta = torch.full((x.shape[0], 1, math.ceil(h / mask_scale), math.ceil(w / mask_scale)),
                       math.log(init / (1 - init)), device=x.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)

    def mask():
        return F.interpolate(theta.sigmoid(), size=(h, w), mode="bilinear", align_corners=False)

    with frozen(clf), torch.enable_grad():
        for _ in range(steps):
            m = mask()
            ce = F.cross_entropy(clf(apply_mask(x, m, fill_img)), y, reduction="none")
            loss = ce + area_weight * m.flatten(1).mean(1) + tv_weight * tv(m)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
    return mask().detach()
