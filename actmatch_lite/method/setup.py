"""What the method needs to know about the classifier, resolved once per call: :class:`Setup`.

:func:`resolve` fills the unset choices of an :class:`~actmatch_lite.method.config.ExplainConfig` (taps, tap weights,
distances, mean colour) from a ``LoadedModel``, or checks that a plain ``nn.Module`` was given them;
:func:`reference_pass` runs the classifier once on the images, recording the logits and the tap activations that the
objective matches.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from actmatch_lite._validate import InputError, check_logits, check_target, check_target_range
from actmatch_lite.method import losses
from actmatch_lite.method.capture import capture_activations, resolve_layers
from actmatch_lite.method.config import ExplainConfig, get_preset
from actmatch_lite.seeding import pick_device
from actmatch_lite.spec import LoadedModel


@dataclass(frozen=True)
class Setup:
    """A classifier and a config with every choice resolved (see :func:`resolve`)."""

    model: nn.Module
    config: ExplainConfig
    taps: tuple[str, ...]
    tap_weights: tuple[float, ...]
    distances: tuple[str, ...]
    mean: tuple[float, ...] | None
    channels: int | None
    min_size: tuple[int, int] | None
    batch_dims: tuple[int | None, ...] = ()   # per tap, its declared batch dim (None: found from the batch size)


def resolve(clf, config) -> Setup:
    """Fill every unset choice from the LoadedModel (taps, tap weights, mean colour, preset) or fail clearly."""
    lm = clf if isinstance(clf, LoadedModel) else None
    model = lm.clf if lm else clf
    if not isinstance(model, nn.Module):
        raise InputError(f"clf must be a torch.nn.Module or a LoadedModel, got {type(clf).__name__}")
    if config is None:
        if lm is None:
            raise InputError("explaining a plain nn.Module needs config=: an ExplainConfig with taps=(...) "
                             "or a preset name; or pass a LoadedModel from actmatch_lite.models.load_model")
        config = lm.preset
    if isinstance(config, str):
        config = get_preset(config)
    if not isinstance(config, ExplainConfig):
        raise InputError(f"config must be an ExplainConfig, a preset name or None, got {type(config).__name__}")
    taps = config.taps if config.taps is not None else (lm.taps if lm else ())
    if config.tap_weights is not None:
        tap_weights = config.tap_weights
    elif lm and taps == lm.taps:
        tap_weights = lm.tap_weights
    else:
        tap_weights = (1.0,) * len(taps)
    distances = config.distances or losses.default_distances(len(taps))
    if config.lambda_act > 0:
        if not taps:
            raise InputError("activation matching needs tap layers: set ExplainConfig(taps=(...)) "
                             "or switch it off with lambda_act=0")
        resolve_layers(model, taps)  # unknown names fail here, before any work
    batch_dims = config.tap_batch_dims if config.tap_batch_dims is not None else (None,) * len(taps)
    if len(batch_dims) != len(taps):
        raise InputError(f"tap_batch_dims has {len(batch_dims)} entries but the taps {tuple(taps)} are {len(taps)}; "
                         "give one per tap, or set taps=(...) alongside it")
    return Setup(model, config, tuple(taps), tuple(tap_weights), tuple(distances), resolve_mean(config, lm),
                  lm.channels if lm else None, lm.min_size if lm else None, tuple(batch_dims))


def resolve_mean(config: ExplainConfig, lm: LoadedModel | None) -> tuple[float, ...] | None:
    """The mean colour: ``config.mean``, else the LoadedModel's. A plain ``nn.Module`` has none: the ``"mean"`` fill
    then raises ``InputError`` (it would be a guess), and ``"mean"``/``"gaussian"`` backgrounds warn that they use
    grey 0.5 (:func:`actmatch_lite.method.fill.random_backgrounds`)."""
    mean = tuple(config.mean) if config.mean is not None else (lm.mean if lm else None)
    if mean is not None and lm and len(mean) != lm.channels:
        raise InputError(f"mean has {len(mean)} values but {lm.name} takes {lm.channels}-channel images; give one "
                         "pixel-space value per channel")
    if mean is not None:
        return mean
    how = ("pass your data's mean colour in pixel space, ExplainConfig(mean=(r, g, b)), e.g. mean=(0.485, 0.456, "
           "0.406) for ImageNet")
    if config.fill == "mean":
        raise InputError(f"fill='mean' needs the dataset mean colour, which a plain nn.Module does not carry: {how}; "
                         "or choose another fill (fill='zero', 'blur' or a constant)")
    centred = [k for k in config.backgrounds if k in ("mean", "gaussian")] if config.lambda_rob > 0 else []
    if centred:
        warnings.warn(f"the {', '.join(map(repr, centred))} backgrounds of the robustness term are centred on "
                      f"grey 0.5, since a plain nn.Module carries no mean colour; {how}", UserWarning, stacklevel=4)
    return None


def resolve_targets(target, logits_x: torch.Tensor) -> torch.Tensor:
    """``(B,)`` classes to explain: ``target`` (what :func:`~actmatch_lite._validate.check_target` accepts; class
    names are resolved there first) or ``argmax f(x)``. The classifier's output must be logits ``(B, K)``."""
    logits_x = check_logits(logits_x)
    b, k = logits_x.shape
    if target is None:
        return logits_x.argmax(1)
    return check_target_range(check_target(target, b), k).to(logits_x.device)


def classifier_device(model: nn.Module, device) -> torch.device:
    """The classifier's device; asking for another one fails (the caller's model is never moved)."""
    params = next(model.parameters(), None)
    here = params.device if params is not None else torch.device("cpu")
    asked = pick_device(device) if device is not None else here
    if asked.type != here.type or asked.index not in (None, here.index):
        raise InputError(f"the classifier lives on {here} but device={device!r} was asked; move it with "
                         f"clf.to({str(device)!r}) first (explain does not move the caller's model)")
    return here


def active_weights(cfg: ExplainConfig) -> dict[str, float]:
    """``{term: λ}`` for every term whose weight is positive (a term with weight 0 is off and costs nothing)."""
    return {k[len("lambda_"):]: v for k, v in dataclasses.asdict(cfg).items() if k.startswith("lambda_") and v > 0}


def capture_taps(setup: Setup, on: bool = True):
    """:func:`capture_activations` on the taps with their declared batch dims (on no layer when ``on`` is False);
    every recorded activation is batch-first."""
    taps = setup.taps if on else ()
    return capture_activations(setup.model, taps, batch_dims=dict(zip(taps, setup.batch_dims)))


def reference_pass(setup: Setup, x: torch.Tensor):
    """``f(x)`` and the detached, batch-first tap activations of the reference pass (no graph)."""
    with torch.no_grad(), capture_taps(setup, "act" in active_weights(setup.config)) as acts:
        logits_x = check_logits(setup.model(x), len(x))   # a tuple or dict output fails here, naming the fix
    return logits_x, {k: [a.detach() for a in v] for k, v in acts.items()}
