"""Output fidelity: the explanation ``e`` must keep the classifier's decision on ``x``.

Suhail, Anand, Sethi (2025), arXiv 2509.23051: a cross-entropy term keeps the top-1 label ``y*`` and a
temperature-scaled KL term keeps the whole output distribution (Hinton et al. 2015 distillation form).
Both return one value per image ``(B,)``; the caller reduces.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy_loss(logits_e: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``L_CE = -log softmax(f(e))[y*]`` per image.

    ``logits_e (B, K)``: logits of the explanation; ``target (B,)``: the class ``y*`` to keep (int64).
    """
    return F.cross_entropy(logits_e, target, reduction="none")


def kl_loss(logits_x: torch.Tensor, logits_e: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """``L_KL = T² · Σ_k p_k (log p_k - log q_k)`` with ``p = softmax(f(x)/T)``, ``q = softmax(f(e)/T)``; ``(B,)``.

    ``logits_x (B, K)`` is the reference (pass it detached); ``logits_e (B, K)`` the explanation's logits.
    The ``T²`` factor keeps the gradient scale independent of ``T`` (Hinton et al. 2015). The authors use T = 2.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p = F.log_softmax(logits_x / temperature, dim=-1)
    log_q = F.log_softmax(logits_e / temperature, dim=-1)
    return temperature ** 2 * (log_p.exp() * (log_p - log_q)).sum(-1)
