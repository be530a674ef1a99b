"""Activation matching: the explanation should drive the classifier's inner layers like the image does.

Suhail, Anand, Sethi (2025), arXiv 2509.23051:

    L_act = Σ_ℓ α_ℓ · d_ℓ(φ_ℓ(x), φ_ℓ(e))

with ``φ_ℓ`` the activation at tap layer ``ℓ``. The authors' code (ResNet-18) uses the cosine distance for the
two shallowest taps and the per-channel standardised MSE for the deeper ones (:func:`default_distances`).

Every activation is batch-first and is first viewed as ``(B, L, C)``: ``L`` locations of ``C`` channels. A conv
map ``(B, C, H, W)`` has ``L = H·W``; a token map ``(B, N, C)`` has ``L = N``; a vector ``(B, C)`` has ``L = 1``.
Sequence-first tokens ``(N, B, C)`` (``nn.TransformerEncoderLayer``'s default) arrive batch-first from
:func:`actmatch_lite.method.capture.capture_activations`; read as they are, ``std_mse`` would standardise across images.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

DISTANCES = ("cosine", "std_mse", "mse")


def as_locations(a: torch.Tensor) -> torch.Tensor:
    """View an activation as ``(B, L, C)``.

    Conv ``(B, C, H, W)`` → ``(B, H·W, C)``; tokens ``(B, N, C)`` stay; a vector ``(B, C)`` → ``(B, 1, C)``.
    """
    if a.dim() == 4:
        return a.flatten(2).transpose(1, 2)
    if a.dim() == 3:
        return a
    if a.dim() == 2:
        return a.unsqueeze(1)
    raise ValueError(f"activation must have 2, 3 or 4 dims (vector, tokens or conv map), got shape {tuple(a.shape)}")


def cosine_distance(a_x: torch.Tensor, a_e: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``d = 1 - mean_l cos(a_x[b, l, :], a_e[b, l, :])``, per image ``(B,)``, in [0, 2].

    The cosine is taken over channels at each location: ``cos = u·v / max(‖u‖ ‖v‖, eps)``. Post-ReLU maps are
    often zero at a location in both passes: two zero vectors count as identical (cos = 1), a zero vector
    against a non-zero one as orthogonal (cos = 0). Squared norms are clamped before the square root so the
    gradient stays finite at zero vectors.
    """
    u, v = as_locations(a_x), as_locations(a_e)
    uu, vv = u.pow(2).sum(-1), v.pow(2).sum(-1)
    cos = (u * v).sum(-1) / torch.sqrt((uu * vv).clamp_min(eps ** 2))
    cos = torch.where((uu == 0) & (vv == 0), torch.ones_like(cos), cos)
    return 1 - cos.mean(-1)


def standardise_channels(a: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``z = (a - mean_l a) / sqrt(var_l a + eps)`` per image and channel over the ``L`` locations; ``(B, L, C)``.

    ``sqrt(var + eps)`` rather than ``std + eps``: a channel that is zero everywhere (common after masking)
    has zero variance, where the gradient of ``std`` is NaN.
    """
    u = as_locations(a)
    if u.shape[1] < 2:
        raise ValueError("std_mse needs at least 2 locations per channel to standardise over; "
                         "use the 'cosine' or 'mse' distance for vector (B, C) activations")
    mu = u.mean(1, keepdim=True)
    var = (u - mu).pow(2).mean(1, keepdim=True)
    return (u - mu) / torch.sqrt(var + eps)


def std_mse_distance(a_x: torch.Tensor, a_e: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``d = mean_{l,c} (z_x - z_e)²``, ``z`` the per-channel standardised activations; ``(B,)``.

    See :func:`standardise_channels`.

    Compares the spatial pattern of every channel regardless of its scale, so deep layers with large
    activations do not dominate.
    """
    return (standardise_channels(a_x, eps) - standardise_channels(a_e, eps)).pow(2).mean((1, 2))


def mse_distance(a_x: torch.Tensor, a_e: torch.Tensor) -> torch.Tensor:
    """``d = mean (a_x - a_e)²`` over everything but the batch; ``(B,)``. The paper text's choice for conv maps."""
    return (a_x - a_e).pow(2).flatten(1).mean(1)


_DISTANCE_FNS = {"cosine": cosine_distance, "std_mse": std_mse_distance, "mse": mse_distance}


def default_distances(n_taps: int) -> tuple[str, ...]:
    """The authors' rule: ``cosine`` for the two shallowest taps, ``std_mse`` for the deeper ones."""
    return tuple("cosine" if i < 2 else "std_mse" for i in range(n_taps))


def layer_distance(a_x: torch.Tensor, a_e: torch.Tensor, distance: str) -> torch.Tensor:
    """One of :data:`DISTANCES` between two activations of the same shape; ``(B,)``."""
    if distance not in _DISTANCE_FNS:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    if a_x.shape != a_e.shape:
        raise ValueError(f"activations differ in shape: {tuple(a_x.shape)} vs {tuple(a_e.shape)}; record both passes "
                         "on the same images, batch-first (capture_activations moves sequence-first tokens "
                         "(N, B, C) to (B, N, C))")
    return _DISTANCE_FNS[distance](a_x, a_e)


def activation_matching_loss(acts_x: Mapping[str, torch.Tensor | Sequence[torch.Tensor]],
                             acts_e: Mapping[str, torch.Tensor | Sequence[torch.Tensor]],
                             weights: Mapping[str, float] | Sequence[float],
                             distances: Mapping[str, str] | Sequence[str]) -> torch.Tensor:
    """``L_act = Σ_ℓ α_ℓ · mean_k d_ℓ(φ_ℓ^k(x), φ_ℓ^k(e))``, per image ``(B,)``.

    ``acts_x``, ``acts_e``: layer name → activation, or the list of activations of every call of that layer
    (as recorded by :func:`actmatch_lite.method.capture.capture_activations`); a layer called ``K`` times
    contributes the mean over its ``K`` calls, so a reused module weighs as much as a module used once.
    Pass ``acts_x`` detached (the reference). ``weights`` (α_ℓ) and ``distances`` (one of :data:`DISTANCES`)
    are given per layer, as mappings or in the order of ``acts_x``.
    """
    names = list(acts_x)
    if not names:
        raise ValueError("activation matching needs at least one tap layer")
    alpha = dict(weights) if isinstance(weights, Mapping) else dict(zip(names, weights, strict=True))
    dist = dict(distances) if isinstance(distances, Mapping) else dict(zip(names, distances, strict=True))
    total = 0
    for name in names:
        calls_x, calls_e = acts_x[name], acts_e[name]
        calls_x = [calls_x] if isinstance(calls_x, torch.Tensor) else list(calls_x)
        calls_e = [calls_e] if isinstance(calls_e, torch.Tensor) else list(calls_e)
        if len(calls_x) != len(calls_e) or not calls_x:
            raise ValueError(f"layer {name!r} was recorded {len(calls_x)} times on x but {len(calls_e)} times on e")
        d = torch.stack([layer_distance(a, b, dist[name]) for a, b in zip(calls_x, calls_e)]).mean(0)
        total = total + alpha[name] * d
    return total
