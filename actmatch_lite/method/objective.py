"""The per-image objective shared by :func:`~actmatch_lite.explain` and the amortized explainer.

For an image ``x`` with target ``y*``, a soft mask ``m_soft`` and the mask the forward passes use, ``m_fwd``
(the straight-through mask ``m_st``, or ``m_soft`` during a soft warm-up),

    L = λ_act Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) + λ_ce L_CE + λ_kl L_KL + λ_area L_area + λ_bin L_bin + λ_tv L_TV
        + λ_rob L_rob + λ_nec L_nec,        e = m_fwd ⊙ x + (1 - m_fwd) ⊙ fill

with each term one pure function of :mod:`actmatch_lite.method.losses`. A term whose weight is 0 is not computed.
:class:`~actmatch_lite.method.setup.Setup` holds what is resolved once per call (taps, weights, mean colour);
:func:`constraints_met` is the test a hard mask must pass to count as an explanation.
"""
from __future__ import annotations

import torch

from actmatch_lite.method import losses
from actmatch_lite.method.capture import Acts
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.fill import apply_mask, random_backgrounds
from actmatch_lite.method.masknet import straight_through
from actmatch_lite.method.setup import Setup, active_weights, capture_taps


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
