"""Mask priors: small, crisp, compact masks.

Suhail, Anand, Sethi (2025), arXiv 2509.23051. The paper writes the area as ``‖m‖₁`` and the binarisation
as ``‖m - m²‖₁``; the authors' code takes means, and its weights are calibrated to means, so means are used
here. Every function takes ``m (B, 1, H, W)`` with values in [0, 1] and returns one value per image ``(B,)``.
"""
from __future__ import annotations

import math

import torch


def area_loss(m_soft: torch.Tensor) -> torch.Tensor:
    """``L_area = mean_{ij} m_ij``: the fraction of the image the mask keeps."""
    return m_soft.flatten(1).mean(1)


def area_excess_loss(m_soft: torch.Tensor, target: float) -> torch.Tensor:
    """``L_area = max(0, mean_{ij} m_ij - a)``: the area only costs above the target fraction ``a``.

    An *area target* instead of a pure penalty: the penalty stops pulling once the mask is small enough, so
    the fidelity terms are not traded away for area below ``a`` (not in the paper; see ``ExplainConfig.area_target``).
    """
    return (area_loss(m_soft) - target).clamp_min(0)


def binarisation_loss(m_soft: torch.Tensor) -> torch.Tensor:
    """``L_bin = mean_{ij} m_ij (1 - m_ij)``: 0 for a binary mask, at most 1/4 (every value 0.5)."""
    return (m_soft * (1 - m_soft)).flatten(1).mean(1)


def tv_loss(m: torch.Tensor, neighbours: int = 8) -> torch.Tensor:
    """Total variation as means over neighbouring pixel pairs.

    ``neighbours = 4`` (paper, up to normalisation):
        ``TV₄ = mean |m_{i,j} - m_{i+1,j}| + mean |m_{i,j} - m_{i,j+1}|``
    ``neighbours = 8`` (authors' code): adds the two diagonals with weight ``1/√2`` (their length):
        ``TV₈ = TV₄ + (1/√2) (mean |m_{i,j} - m_{i+1,j+1}| + mean |m_{i,j+1} - m_{i+1,j}|)``
    Each mean runs over the pairs that exist in the image. The paper's sum is the mean times the number of
    pairs. A checkerboard has TV₄ = TV₈ = 2; a vertical half/half split of width W has TV₄ = 1/(W-1),
    TV₈ = (1 + √2)/(W-1).
    """
    if neighbours not in (4, 8):
        raise ValueError(f"neighbours must be 4 or 8, got {neighbours}")
    if m.dim() != 4 or m.shape[1] != 1:
        raise ValueError(f"mask must have shape (B, 1, H, W), got {tuple(m.shape)}")
    m = m[:, 0]
    dv = (m[:, 1:, :] - m[:, :-1, :]).abs().flatten(1).mean(1)
    dh = (m[:, :, 1:] - m[:, :, :-1]).abs().flatten(1).mean(1)
    tv = dv + dh
    if neighbours == 8:
        d1 = (m[:, 1:, 1:] - m[:, :-1, :-1]).abs().flatten(1).mean(1)
        d2 = (m[:, 1:, :-1] - m[:, :-1, 1:]).abs().flatten(1).mean(1)
        tv = tv + (d1 + d2) / math.sqrt(2)
    return tv
