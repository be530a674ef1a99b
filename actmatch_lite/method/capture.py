"""Activation capture: record what chosen layers of a classifier output during a forward pass.

``φ_ℓ(x)`` in the paper is the (post-ReLU) activation of tap layer ``ℓ``. Hooks are the only way to read it
without rewriting the classifier, so this module keeps them on a short leash: registered on entry, removed
in ``finally`` (also when the forward pass raises), exceptions never swallowed.

    with capture_activations(clf, ["layer1", "layer2"]) as acts:
        logits = clf(x)
    acts["layer1"]  # list with one tensor per call of that module, (B, C, H, W) or (B, N, C) or (B, C)

Every recorded tensor is **batch-first**. Token maps come in two layouts: ``(B, N, C)`` and, the default of
``nn.TransformerEncoderLayer`` (``batch_first=False``), ``(N, B, C)``. The batch size ``B`` is read from dim 0
of the model's first tensor input, and a 3-dim output whose dim 1 alone has size ``B`` is moved to
``(B, N, C)``. When dims 0 and 1 both have size ``B`` the layout cannot be read off the shapes: capture
refuses it until ``batch_dims`` declares it (:func:`find_batch_dim`).

A module that runs several times in one forward pass (EfficientNet-Lite0 reuses one activation module in
every block) records every call, in call order; :func:`actmatch_lite.method.losses.activation_matching_loss` then
averages the distance over the calls. The graph is kept (nothing is detached): detach the reference pass
yourself, e.g. by running it under ``torch.no_grad()``.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from actmatch_lite._validate import InputError

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


def find_batch_dim(shape: Sequence[int], batch: int | None, declared: int | None = None, name: str = "") -> int:
    """The dim of a tap output of ``shape`` that indexes the ``batch`` images of the forward pass.

    ``declared`` (0 or 1, say) is checked and returned. Otherwise: dim 0 for conv maps ``(B, C, H, W)`` and
    vectors ``(B, C)``; for tokens, dim 0 for ``(B, N, C)`` and dim 1 for ``(N, B, C)``, whichever alone has
    size ``batch``. ``batch`` None (unknown): dim 0, unchecked. Raises ``InputError`` when no dim has the batch
    size where the images should be, or when dims 0 and 1 both do (``N = B``: the layout is ambiguous).
    """
    shape = tuple(shape)
    if declared is not None:
        if declared >= len(shape) or (batch is not None and shape[declared] != batch):
            raise InputError(f"layer {name!r} outputs {shape}, whose declared batch dim {declared} does not have "
                             f"the batch size {batch}; declare the dim that indexes the images (tap_batch_dims)")
        return declared
    if batch is None:
        return 0
    # Dim 2 of a token map is the channels in both layouts, so only dims 0 and 1 can hold the images.
    found = [d for d in ((0, 1) if len(shape) == 3 else (0,)) if shape[d] == batch]
    if found == [0, 1] and batch == 1:
        return 0   # (1, 1, C): both layouts are the same tensor
    if len(found) == 1:
        return found[0]
    if found:
        raise InputError(
            f"layer {name!r} outputs {shape} on a batch of {batch} images: dims 0 and 1 both have size {batch}, "
            "so batch-first (B, N, C) and sequence-first (N, B, C) tokens cannot be told apart; declare each "
            "tap's batch dim, e.g. ExplainConfig(tap_batch_dims=(...)) with 1 for a Transformer layer built "
            f"with batch_first=False and 0 otherwise (capture_activations(..., batch_dims={{{name!r}: 1}}) by "
            "hand), or use a batch size other than the number of tokens")
    raise InputError(f"layer {name!r} outputs {shape} on a batch of {batch} images, and neither dim 0 nor (for "
                     "tokens) dim 1 has that size; tap a layer that keeps one entry per image, or declare the "
                     "dim that does with ExplainConfig(tap_batch_dims=(...))")


def _batch_size(args, kwargs) -> int | None:
    # The images are the model's first tensor argument; their dim 0 is the batch.
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value.shape[0] if value.dim() else None
    return None


@contextmanager
def capture_activations(model: nn.Module, layers: Sequence[str],
                        batch_dims: Mapping[str, int | None] | None = None) -> Iterator[Acts]:
    """Record the outputs of ``layers`` (names for ``model.get_submodule``) during forward passes in the block.

    Yields ``acts``: a dict ``layer name -> list of tensors``, one per call, in call order. Each tensor is a
    clone of the module output (the first tensor of a tuple output), batch-first (:func:`find_batch_dim`;
    ``batch_dims`` declares a layer's batch dim, ``{"encoder": 1}`` for sequence-first tokens), so a later
    in-place operation cannot change it; hooked ``nn.ReLU`` modules run with ``inplace=False`` while hooked,
    for the same reason. The graph is kept. On exit every hook is removed and every ``inplace`` flag
    restored, whether the block ended normally or raised.
    """
    modules = resolve_layers(model, layers)
    declared = dict(batch_dims or {})
    unknown = sorted(set(declared) - set(modules))
    if unknown:
        raise InputError(f"batch_dims names layers that are not captured: {unknown}; name layers from {list(modules)}")
    acts: Acts = {name: [] for name in modules}
    batch: dict[str, int | None] = {"size": None}
    handles = []
    inplace_flags = {}
    try:
        if modules:
            def note_batch(_module, args, kwargs):
                batch["size"] = _batch_size(args, kwargs)

            handles.append(model.register_forward_pre_hook(note_batch, with_kwargs=True))
        for name, module in modules.items():
            if hasattr(module, "inplace") and isinstance(module.inplace, bool):
                # An in-place activation would overwrite its own input, which autograd or another hook may still need.
                inplace_flags[module] = module.inplace
                module.inplace = False

            def hook(_module, _inputs, output, name=name):
                a = _first_tensor(output)
                dim = find_batch_dim(a.shape, batch["size"], declared.get(name), name)
                acts[name].append(a.movedim(dim, 0).clone())

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
