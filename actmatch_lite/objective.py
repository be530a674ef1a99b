"""The per-image objective shared by :func:`~actmatch_lite.explain` and the amortized explainer.

For an image ``x`` with target ``y*``, a soft mask ``m_soft`` and the mask the forward passes use, ``m_fwd``
(the straight-through mask ``m_st``, or ``m_soft`` during a soft warm-up),

    L = λ_act Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) + λ_ce L_CE + λ_kl L_KL + λ_area L_area + λ_bin L_bin + λ_tv L_TV
        + λ_rob L_rob + λ_nec L_nec,        e = m_fwd ⊙ x + (1 - m_fwd) ⊙ fill

with each term one pure function of :mod:`actmatch_lite.losses`. A term whose weight is 0 is not computed.
:func:`resolve` fills the unset choices (taps, tap weights, distances, mean colour) from a ``LoadedModel``;
:func:`constraints_met` is the test a hard mask must pass to count as an explanation.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from . import losses
from ._validate import InputError, check_logits, check_target, check_target_range
from .capture import Acts, capture_activations, resolve_layers
from .config import ExplainConfig, get_preset
from .fill import apply_mask, random_backgrounds
from .masknet import straight_through
from .models.spec import LoadedModel
from .seeding import pick_device


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
    grey 0.5 (:func:`actmatch_lite.fill.random_backgrounds`)."""
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


def objective(setup: Setup, x, fill, logits_x, acts_x, y, m_soft, gens, *, step: int = 0, hard: bool = True,
              kinds: tuple[str, ...] | None = None) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """The per-image objective ``L (B,)`` = Σ_k λ_k term_k, the terms ``{k: (B,)}``, and the constraint tier each
    image's forward mask reaches (:func:`tiers`).

    ``hard``: the forward passes mask with ``m_st`` (paper) or, during a soft warm-up, with ``m_soft``; ``step``
    picks the background kinds when the config draws them in turn (``backgrounds_per_step``), unless ``kinds``
    names them.
    """
    cfg = setup.config
    weights = active_weights(cfg)
    m_fwd = straight_through(m_soft, cfg.threshold) if hard else m_soft
    kinds = kinds if kinds is not None else kinds_at(cfg, step)
    terms, met = loss_terms(setup, weights, x, fill, logits_x, m_soft, m_fwd, y, kinds, acts_x, gens)
    total = sum(weights[k] * terms[k] for k in weights)
    if not torch.isfinite(total).all():
        bad = [k for k, v in terms.items() if not torch.isfinite(v).all()]
        raise FloatingPointError(f"the loss became NaN or inf at step {step} (terms {bad}); lower the learning rate "
                                 "or the weights of those terms")
    return total, terms, met


def kinds_at(cfg: ExplainConfig, step: int) -> tuple[str, ...]:
    """The background kinds drawn at ``step``: all of them, or ``backgrounds_per_step`` of them in turn."""
    k = cfg.backgrounds_per_step
    if k is None:
        return cfg.backgrounds
    n = len(cfg.backgrounds)
    return tuple(cfg.backgrounds[(step * k + j) % n] for j in range(k))


def draw_backgrounds(setup: Setup, x, kinds, gens) -> torch.Tensor:
    """Backgrounds ``(K, b, C, H, W)``, each image from its own generator, so its draws do not depend on
    which other images share the batch."""
    return torch.cat([random_backgrounds(x[j:j + 1], kinds, mean=setup.mean, generator=g)
                      for j, g in enumerate(gens)], 1)


def background_logits(setup: Setup, x, m, kinds, gens) -> torch.Tensor:
    """``f(m ⊙ x + (1 - m) ⊙ r_k)`` for fresh backgrounds ``r_k`` of ``kinds`` (:func:`draw_backgrounds`):
    logits ``(K, b, classes)``."""
    r = draw_backgrounds(setup, x, kinds, gens)
    return setup.model(losses.background_composites(x, m, r).flatten(0, 1)).view(len(r), len(x), -1)


def loss_terms(setup: Setup, weights, x, fill, logits_x, m_soft, m_fwd, y, kinds, acts_x: Acts, gens):
    """Per-image loss terms ``{name: (b,)}`` and the constraint tier each image reaches (:func:`tiers`), read
    from the same forward passes.

    ``m_fwd`` is the mask the forward passes use: the straight-through mask (paper), or ``m_soft`` during the
    soft warm-up. Backgrounds of ``kinds`` are drawn from ``gens`` (one generator per image).
    """
    cfg, model = setup.config, setup.model
    e = apply_mask(x, m_fwd, fill)
    with capture_taps(setup, "act" in weights) as acts_e:
        logits_e = model(e)
    terms = {}
    if "act" in weights:
        terms["act"] = losses.activation_matching_loss(acts_x, acts_e, setup.tap_weights, setup.distances)
    if "ce" in weights:
        terms["ce"] = losses.cross_entropy_loss(logits_e, y)
    if "kl" in weights:
        terms["kl"] = losses.kl_loss(logits_x, logits_e, cfg.temperature)
    if "area" in weights:
        terms["area"] = (losses.area_loss(m_soft) if cfg.area_target is None
                         else losses.area_excess_loss(m_soft, cfg.area_target))
    if "bin" in weights:
        terms["bin"] = losses.binarisation_loss(m_soft)
    if "tv" in weights:
        terms["tv"] = losses.tv_loss(m_soft, cfg.tv_neighbours)
    kept = logits_e.argmax(1) == y
    if "rob" in weights:
        logits_bg = background_logits(setup, x, m_fwd, kinds, gens)
        terms["rob"] = losses.robustness_loss(logits_bg, y, form=cfg.rob_form, logits_x=logits_x,
                                               temperature=cfg.temperature)
        kept = kept & (logits_bg.argmax(2) == y).all(0)
    lost = torch.ones_like(kept)          # removing the mask loses the label (vacuously true without λ_nec)
    if "nec" in weights:
        logits_comp = model(losses.complement(x, m_fwd, fill))
        terms["nec"] = losses.necessity_loss(logits_x, logits_comp, y, margin=cfg.nec_margin, form=cfg.nec_form)
        lost = logits_comp.argmax(1) != y
    return terms, tiers(kept, lost)


def tiers(kept: torch.Tensor, necessary: torch.Tensor) -> torch.Tensor:
    """``(b,)`` long, how far a mask meets the abductive constraints: ``2`` all of them (the label is kept on ``e``
    and on the backgrounds, and lost on the complement when ``λ_nec > 0``), ``1`` the label is kept but removing
    the mask keeps it too, ``0`` the label is lost. ``2 · kept`` when necessity is not asked for."""
    return kept.long() * (1 + necessary.long())


@torch.no_grad()
def constraints_met(setup: Setup, weights, x, fill, m, y, kinds, gens) -> torch.Tensor:
    """The tier (:func:`tiers`) the hard mask ``m`` reaches: the label on ``e`` and on fresh backgrounds of
    ``kinds`` (when ``λ_rob > 0``), and on the complement ``(1 - m) ⊙ x + m ⊙ fill`` (when ``λ_nec > 0``)."""
    kept = setup.model(apply_mask(x, m, fill)).argmax(1) == y
    if "rob" in weights:
        kept = kept & (background_logits(setup, x, m, kinds, gens).argmax(2) == y).all(0)
    return tiers(kept, necessary(setup, x, fill, m, y) if "nec" in weights else torch.ones_like(kept))


@torch.no_grad()
def necessary(setup: Setup, x, fill, m, y) -> torch.Tensor:
    """``(b,)`` bool: removing the hard mask ``m`` loses the label, ``argmax f((1 - m) ⊙ x + m ⊙ fill) ≠ y``."""
    return setup.model(losses.complement(x, m.to(x.dtype), fill)).argmax(1) != y


def feasible(kept: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(b,)`` bool: the hard mask ``m (b, 1, H, W)`` is feasible, i.e. it keeps the label (``kept``) and is not
    empty. An empty mask explains nothing, even where the fill alone is classified ``y`` (fmnist-cnn calls a black
    image "T-shirt/top", shapes-cnn calls it "triangle"). Both regimes' keep rules use this test. Given tiers
    (:func:`tiers`) instead of ``kept``, it returns them with an empty mask's set to 0."""
    return kept * m.flatten(1).any(1)


@torch.no_grad()
def fill_kept(setup: Setup, fill: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(b,)`` bool: the fill image alone is classified ``y`` (then sufficiency on it holds for any mask).
    A fill shared by every image (zero, mean colour) costs one single-image pass."""
    if len(fill) > 1 and bool((fill == fill[:1]).all()):
        return setup.model(fill[:1]).argmax(1).expand(len(fill)) == y
    return setup.model(fill).argmax(1) == y


def explanation_warnings(m: torch.Tensor, kept: torch.Tensor, y: torch.Tensor, vacuous: torch.Tensor,
                         necessary_met: torch.Tensor | None = None) -> tuple[str, ...]:
    """One line per image whose mask collapsed (empty or full), whose explanation lost the label, whose
    sufficiency proves nothing (``vacuous``: the fill alone is classified ``y``, :func:`fill_kept`), or, when
    ``necessary_met`` is given (the config asks for necessity), whose removal keeps the label (:func:`necessary`)."""
    area = m.flatten(1).float().mean(1)
    out = []
    for i in range(len(m)):
        if area[i] == 0:
            out.append(f"image {i}: empty mask (collapsed); lower lambda_area / lambda_tv or raise lambda_ce")
        elif area[i] == 1:
            out.append(f"image {i}: full mask (nothing removed); raise lambda_area")
        if not kept[i]:
            out.append(f"image {i}: the explanation does not keep the label {int(y[i])}")
        elif vacuous[i]:
            out.append(f"image {i}: the fill alone is classified {int(y[i])}, so keeping the label on this fill "
                       "says nothing about the mask (vacuous sufficiency); check robustness on other backgrounds "
                       "and necessity")
        if necessary_met is not None and not necessary_met[i] and 0 < area[i] < 1:
            out.append(f"image {i}: removing the mask keeps the label {int(y[i])} (necessity not met): the rest of "
                       "the image still carries the class, e.g. another instance (explain_instances) or the "
                       "object's silhouette; raise lambda_nec or lower lambda_area")
    return tuple(out)
