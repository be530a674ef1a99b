"""Abductive constraints: what the mask keeps must suffice for the label, and what it removes must matter.

Sufficiency / robustness (Suhail, Anand, Sethi 2025, arXiv 2509.23051, "abductive" term): the kept pixels
must keep ``y*`` whatever replaces the rest,

    ẽ_k = m_st ⊙ x + (1 - m_st) ⊙ r_k,      L_rob = mean_k -log softmax(f(ẽ_k))[y*]

over ``K`` random backgrounds ``r_k`` (:func:`actmatch_lite.method.fill.random_backgrounds`), redrawn every step.
The composite must be built with the straight-through mask ``m_st``
(:func:`actmatch_lite.method.masknet.straight_through`): the authors' code used the hard mask without the
straight-through path, so this term never trained the mask.

Necessity (in the authors' code with weight 0; the paper names it only): removing what the mask keeps must
lower the target score,

    x_comp = (1 - m_st) ⊙ x + m_st ⊙ fill,  L_nec = max(0, margin - (z_y*(x) - z_y*(x_comp)))

These functions take logits, so the caller can batch the forward passes and reuse the logits to check the
constraints. Each returns one value per image ``(B,)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from actmatch_lite.method.fill import apply_mask, remove_mask
from actmatch_lite.method.losses.fidelity import kl_loss

ROBUSTNESS_FORMS = ("ce", "kl")
NECESSITY_FORMS = ("logit", "prob")


def background_composites(x: torch.Tensor, m: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """``ẽ_k = m ⊙ x + (1 - m) ⊙ r_k``; ``x (B, C, H, W)``, ``m (B, 1, H, W)``, ``r (K, B, C, H, W)`` → ``(K, B, C, H, W)``."""
    return apply_mask(x.unsqueeze(0), m.unsqueeze(0), backgrounds)


def complement(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """``x_comp = (1 - m) ⊙ x + m ⊙ fill``: the image with the explanation removed; ``(B, C, H, W)``."""
    return remove_mask(x, m, fill)


def robustness_loss(logits_bg: torch.Tensor, target: torch.Tensor, *, form: str = "ce",
                     logits_x: torch.Tensor | None = None, temperature: float = 2.0) -> torch.Tensor:
    """``L_rob = mean_k ℓ(f(ẽ_k))`` per image, ``logits_bg = f(ẽ) (K, B, classes)``, ``target (B,)``.

    ``form="ce"``: ``ℓ = -log softmax(f(ẽ_k))[y*]``.
    ``form="kl"``: ``ℓ = T² KL(softmax(f(x)/T) ‖ softmax(f(ẽ_k)/T))`` (authors' alternative; needs ``logits_x``).
    """
    k, b = logits_bg.shape[:2]
    flat = logits_bg.reshape(k * b, -1)
    if form == "ce":
        per = F.cross_entropy(flat, target.repeat(k), reduction="none")
    elif form == "kl":
        if logits_x is None:
            raise ValueError("the KL form of the robustness loss needs logits_x")
        per = kl_loss(logits_x.repeat(k, 1), flat, temperature)
    else:
        raise ValueError(f"unknown robustness form {form!r}; use one of {ROBUSTNESS_FORMS}")
    return per.view(k, b).mean(0)


def necessity_loss(logits_x: torch.Tensor, logits_comp: torch.Tensor, target: torch.Tensor, *,
                   margin: float = 1.0, form: str = "logit") -> torch.Tensor:
    """Hinge on the drop of the target score when the explanation is removed; ``(B,)``.

    ``form="logit"``: ``max(0, margin - (z_y*(x) - z_y*(x_comp)))`` with ``z`` the logits (authors' code, margin 1).
    ``form="prob"``: the same with probabilities ``p = softmax(z)``; ``margin`` is then a probability drop.
    ``logits_x (B, K)`` is the reference (detached), ``logits_comp = f(x_comp) (B, K)``.
    """
    if form == "logit":
        s_x, s_c = logits_x, logits_comp
    elif form == "prob":
        s_x, s_c = logits_x.softmax(-1), logits_comp.softmax(-1)
    else:
        raise ValueError(f"unknown necessity form {form!r}; use one of {NECESSITY_FORMS}")
    idx = target.view(-1, 1)
    drop = s_x.gather(1, idx)[:, 0] - s_c.gather(1, idx)[:, 0]
    return (margin - drop).clamp_min(0)
