"""Activation capture: record what chosen layers of a classifier output during a forward pass.

``φ_ℓ(x)`` in the paper is the (post-ReLU) activation of tap layer ``ℓ``. Hooks are the only way to read it
without rewriting the classifier, so this module keeps them on a short leash: registered on entry, removed
in ``finally`` (also when the forward pass raises), exceptions never swallowed.

    with capture_activations(clf, ["layer1", "layer2"]) as acts:
        logits = clf(x)
    acts["layer1"]  # list with one tensor per call of that module, (B, C, H, W) or (B, N, C) or (B, C)

A module that runs several times in one forward pass (EfficientNet-Lite0 reuses one activation module in
every block) records every call, in call order; :func:`actmatch_lite.losses.activation_matching_loss` then
averages the distance over the calls. The graph is kept (nothing is detached): detach the reference pass
yourself, e.g. by running it under ``torch.no_grad()``.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ._validate import InputError

Acts = dict[str, list[torch.Tensor]]


def resolve_layers(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """Map each name in ``layers`` to ``model.get_submodule(name)``; unknown names raise ``InputError``
    listing the valid names, closest matches first."""
    if isinstance(layers, str):
        layers = [layers]
    valid = [name for name, _ in model.named_modules() if name]
    found = {}
    for name in layers:
        try:
            found[name] = model.get_submodule(name)
        except AttributeError:
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.4)
            rest = [v for v in valid if v not in close]
            shown = close + rest[: max(0, 20 - len(close))]
            more = f" (and {len(valid) - len(shown)} more)" if len(valid) > len(shown) else ""
            raise InputError(f"unknown layer {name!r} in {type(model).__name__}; valid layer names, "
                             f"closest first: {shown}{more}") from None
    return found


def _first_tensor(output) -> torch.Tensor:
    # Some modules return tuples (e.g. attention blocks return (out, weights)): the activation is the first tensor.
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(f"cannot capture a module output of type {type(output).__name__}; expected a tensor "
                    "or a tuple whose first tensor is the activation")


@contextmanager
def capture_activations(model: nn.Module, layers: Sequence[str]) -> Iterator[Acts]:
    """Record the outputs of ``layers`` (names for ``model.get_submodule``) during forward passes in the block.

    Yields ``acts``: a dict ``layer name -> list of tensors``, one per call, in call order. Each tensor is a
    clone of the module output (the first tensor of a tuple output), so a later in-place operation cannot
    change it; hooked ``nn.ReLU`` modules run with ``inplace=False`` while hooked, for the same reason.
    The graph is kept. On exit every hook is removed and every ``inplace`` flag restored, whether the block
    ended normally or raised.
    """
    modules = resolve_layers(model, layers)
    acts: Acts = {name: [] for name in modules}
    handles = []
    inplace_flags = {}
    try:
        for name, module in modules.items():
            if hasattr(module, "inplace") and isinstance(module.inplace, bool):
                # An in-place activation would overwrite its own input, which autograd or another hook may still need.
                inplace_flags[module] = module.inplace
                module.inplace = False

            def hook(_module, _inputs, output, name=name):
                acts[name].append(_first_tensor(output).clone())

            handles.append(module.register_forward_hook(hook))
        yield acts
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in inplace_flags.items():
            module.inplace = flag


def count_hooks(model: nn.Module) -> int:
    """Number of forward, forward-pre and backward hooks on ``model`` and all its submodules (0 when clean)."""
    total = 0
    for module in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(module, attr, {}))
    return total
