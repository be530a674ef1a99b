"""Refinement: the per-image regime warm-started from the amortized network.

``refine_steps = N`` copies θ* into one network per image (:func:`stack_networks`) and runs N Adam steps at
``config.lr`` on each image's own objective ``L`` (:func:`actmatch_lite.method.objective.objective`):

    θ_i ← θ*,    θ_i ← θ_i - Adam(∇_θi L(x_i, sigmoid(U_θi(x_i))))    (N times)

Each image keeps its mask with the lowest objective seen, the amortized one (step 0) included, so refinement never
worsens the objective it is measured on.
"""
from __future__ import annotations

import math

import torch

from actmatch_lite._validate import InputError
from actmatch_lite.method.masknet import MaskUNet, StackedConv2d
from actmatch_lite.method.objective import objective


def stack_networks(net: MaskUNet, n: int) -> MaskUNet:
    """``n`` per-image networks (``net``'s class with ``n_nets = n``), each a copy of the single network ``net``.

    Walks the two models' :class:`StackedConv2d` layers in the same order and broadcasts ``weight[0]`` and
    ``bias[0]``, so network ``i`` computes exactly what ``net`` computes; training them afterwards is the
    per-image regime warm-started from the amortized solution.
    """
    if net.n_nets != 1:
        raise InputError(f"stack_networks copies a single network (n_nets = 1), got n_nets = {net.n_nets}")
    out = type(net)(net.stem.c_in, net.size, n_nets=n, spec=net.spec, activation=net.activation)
    out = out.to(net.stem.weight.device)
    src = [m for m in net.modules() if isinstance(m, StackedConv2d)]
    dst = [m for m in out.modules() if isinstance(m, StackedConv2d)]
    with torch.no_grad():
        for a, b in zip(src, dst, strict=True):
            b.weight.copy_(a.weight.expand_as(b.weight))
            b.bias.copy_(a.bias.expand_as(b.bias))
    return out


def refine(setup, net: MaskUNet, x, fill, logits_x, acts_x, y, steps: int, seed: int):
    """The best soft masks ``(B, 1, H, W)`` seen in ``steps`` per-image Adam steps from ``net``, and the mean
    objective at every step (``steps + 1`` values: step 0 is the amortized mask).

    ``logits_x``, ``acts_x``: the reference pass on ``x``; ``y``: the targets; image ``i`` draws its random
    backgrounds from ``torch.Generator().manual_seed(seed + i)``, as :func:`actmatch_lite.explain` does.
    """
    nets = stack_networks(net, len(x))
    opt = torch.optim.Adam(nets.parameters(), lr=setup.config.lr)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(x))]
    best = torch.full((len(x),), math.inf, device=x.device)
    best_soft = torch.zeros(len(x), 1, *x.shape[-2:], device=x.device)
    history = []
    for step in range(steps + 1):   # step 0 scores the amortized mask itself
        m_soft = nets(x)
        total, _, _ = objective(setup, x, fill, logits_x, acts_x, y, m_soft, gens, step=step)
        better = total.detach() < best
        best_soft[better] = m_soft.detach()[better]
        best = torch.where(better, total.detach(), best)
        history.append(float(total.detach().mean()))
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        total.sum().backward()      # sum: each network's gradient depends on its own image only
        opt.step()
    return best_soft, history
