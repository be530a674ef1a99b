"""M7 activation fidelity: how far the explanation's activations are from the image's, layer by layer.

Report it on the layers the explainer matched *and* on layers it did not match: a mask that only
fools the matched taps shows a large distance elsewhere.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from actmatch_lite._validate import InputError, check_images, check_mask
from actmatch_lite.evaluation.metrics._common import THRESHOLD, get_fill, hard_mask
from actmatch_lite.method.capture import capture_activations
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.frozen import frozen

DIRECTION = {"activation_distance": "lower", "activation_fidelity": "lower"}
DISTANCES = ("relative-l2", "cosine", "mse")
EPS = 1e-12   # keeps the relative distance finite on a layer whose activations are all zero


def _distance(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    a, b = a.flatten(2) if a.dim() > 2 else a.unsqueeze(-1), b.flatten(2) if b.dim() > 2 else b.unsqueeze(-1)
    if distance == "relative-l2":
        return (a - b).flatten(1).norm(dim=1) / (a.flatten(1).norm(dim=1) + EPS)
    if distance == "cosine":
        return 1 - torch.nn.functional.cosine_similarity(a, b, dim=1).mean(-1)
    if distance == "mse":
        return (a - b).pow(2).flatten(1).mean(1)
    raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")


def activation_distance(acts_x: dict[str, torch.Tensor], acts_e: dict[str, torch.Tensor], *,
                        distance: str = "relative-l2") -> dict[str, torch.Tensor]:
    """M7 ↓. Per layer ℓ and image, the distance between ``a = φ_ℓ(x)`` and ``b = φ_ℓ(e)``: dict of ``(B,)``.

    Activations are ``(B, C, ...)`` (conv maps) or ``(B, C)`` (linear layers). Distances:

    * ``"relative-l2"`` (default): ``‖a - b‖₂ / ‖a‖₂``, scale-free so layers can be compared (0 = identical);
    * ``"cosine"``: ``1 - mean over positions of cos(a_:,p, b_:,p)`` over channels (the code's shallow taps);
    * ``"mse"``: ``mean((a - b)²)``.
    """
    missing = set(acts_x) ^ set(acts_e)
    if missing:
        raise InputError(f"acts_x and acts_e must hold the same layers; only one has {sorted(missing)}")
    return {name: _distance(acts_x[name], acts_e[name], distance) for name in acts_x}


def activation_fidelity(clf: nn.Module, x: torch.Tensor, m: torch.Tensor, layers: Sequence[str], *,
                        fill="zero", mean=None, threshold: float = THRESHOLD,
                        distance: str = "relative-l2") -> dict[str, torch.Tensor]:
    """M7 ↓ end to end: ``activation_distance`` between ``x`` and ``e = m ⊙ x + (1 - m) ⊙ fill``.

    Uses the hard mask ``1[m > threshold]``; returns ``{layer: (B,)}``.
    """
    check_images(x)
    m = hard_mask(check_mask(m, x), threshold)
    e = apply_mask(x, m, get_fill(x, fill, mean))
    b = x.shape[0]
    with frozen(clf), torch.no_grad(), capture_activations(clf, layers) as acts:
        clf(torch.cat([x, e]))  # one pass: the first B rows are the image's, the last B the explanation's
    reused = [name for name, calls in acts.items() if len(calls) != 1]
    if reused:
        raise InputError(f"layers {reused} run more than once per forward pass (a reused module); "
                         "pick layers that run once, such as block outputs")
    acts_x = {name: calls[0][:b] for name, calls in acts.items()}
    acts_e = {name: calls[0][b:] for name, calls in acts.items()}
    return activation_distance(acts_x, acts_e, distance=distance)
