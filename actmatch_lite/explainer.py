"""``explain``: activation matching in the paper's per-image regime.

Suhail, Anand, Sethi (2025), "Activation Matching for Explanation Generation", arXiv 2509.23051.

For every image a fresh mask network is trained from scratch to minimise

    L = λ_act Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) + λ_ce L_CE + λ_kl L_KL + λ_area L_area + λ_bin L_bin + λ_tv L_TV
        + λ_rob L_rob + λ_nec L_nec,        e = m_st ⊙ x + (1 - m_st) ⊙ fill.

A batch of B images trains B independent networks in one call (``masknet.MaskUNet`` with ``n_nets = B``) on the
SUM of the per-image losses, so image i's gradients depend on image i only; each image has its own seed
(``seed + i``) for its network and its random backgrounds, and stops early on its own. Explaining an image
alone or inside a batch therefore gives the same result up to float error.

Three settings go beyond the paper (all off in the ``paper-resnet18`` preset, see ``ExplainConfig``):

* ``soft_steps``: a warm-up that masks with ``m_soft`` itself before the straight-through mask. A small
  network trained from scratch in ~100 steps collapses to an empty or full mask under ``m_st`` from step one
  (the authors train a 7.8 M-parameter U-Net for 880 steps at lr 5e-5). Images whose hard mask satisfies the
  constraints at the end of the warm-up stop there; the others go on under ``m_st`` to repair their mask.
* ``patience`` / ``stable_iou`` / ``stop_max_bin``: an image stops once its hard mask has stayed within IoU
  ``stable_iou`` of a reference for ``patience`` steps, its soft mask is decided (binarisation loss at most
  ``stop_max_bin``) and it keeps the label on ``e`` and on that step's backgrounds.
* ``keep``: return the final mask (authors), the latest one that satisfied those constraints, or the smallest.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import losses
from ._validate import InputError, check_images
from .capture import Acts, capture_activations, resolve_layers
from .config import ExplainConfig, get_preset
from .fill import apply_mask, make_fill, random_backgrounds
from .frozen import frozen
from .masknet import MaskUNet, default_spec, straight_through
from .models.spec import LoadedModel

PROGRESS_MIN_WORK = 2000  # progress=None shows a bar when steps × images reaches this (about a second of work)


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` returns for a batch of B images (all tensors on the CPU)."""

    mask: torch.Tensor          # (B, 1, H, W) bool: m = 1[m_soft > threshold]
    soft_mask: torch.Tensor     # (B, 1, H, W) float in (0, 1), from the step config.keep picks
    explanation: torch.Tensor   # (B, C, H, W): e = m ⊙ x + (1 - m) ⊙ fill, pixel space
    target: torch.Tensor        # (B,) the explained class y*
    prob_before: torch.Tensor   # (B,) softmax(f(x))[y*]
    prob_after: torch.Tensor    # (B,) softmax(f(e))[y*]
    history: dict[str, list[float]]  # per step, mean over the images still training: each term (unweighted),
    #                                  "total" (weighted sum), "hard_area" (area of the hard mask m) and "kept"
    #                                  (fraction whose m keeps the label on e and on the step's backgrounds)
    steps_run: torch.Tensor     # (B,) steps each image ran before it stopped
    seconds: float
    config: ExplainConfig
    warnings: tuple[str, ...]

    @property
    def area(self) -> torch.Tensor:
        """``(B,)`` fraction of pixels each hard mask keeps."""
        return self.mask.flatten(1).float().mean(1)


@dataclass(frozen=True)
class _Setup:
    model: nn.Module
    config: ExplainConfig
    taps: tuple[str, ...]
    tap_weights: tuple[float, ...]
    distances: tuple[str, ...]
    mean: tuple[float, ...] | None
    channels: int | None
    min_size: tuple[int, int] | None


def _resolve(clf, config) -> _Setup:
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
    return _Setup(model, config, tuple(taps), tuple(tap_weights), tuple(distances), lm.mean if lm else None,
                  lm.channels if lm else None, lm.min_size if lm else None)


def _targets(target, logits_x: torch.Tensor) -> torch.Tensor:
    b, k = logits_x.shape
    if target is None:
        return logits_x.argmax(1)
    y = torch.as_tensor(target, device=logits_x.device)
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() > 1 or (y.dim() == 1 and len(y) != b):
        raise InputError(f"target must be an int or an integer tensor of shape ({b},), got {target!r}")
    y = y.long().expand(b).clone()
    if (y < 0).any() or (y >= k).any():
        raise InputError(f"target classes must lie in [0, {k}), got {y.tolist()}")
    return y


def _device(model: nn.Module, device) -> torch.device:
    params = next(model.parameters(), None)
    here = params.device if params is not None else torch.device("cpu")
    asked = torch.device(device) if device is not None else here
    if asked.type != here.type or asked.index not in (None, here.index):
        raise InputError(f"the classifier lives on {here} but device={device!r} was asked; move it with "
                         f"clf.to({str(device)!r}) first (explain does not move the caller's model)")
    return here


def explain(clf, x: torch.Tensor, *, config: ExplainConfig | str | None = None, target=None, seed: int = 0,
            device=None, progress: bool | None = None) -> Explanation:
    """Explain the classifier's decision on each image of ``x (B, C, H, W)`` (pixels in [0, 1]).

    ``clf``: a ``LoadedModel`` (its taps, tap weights, mean colour and preset are the defaults) or an
    ``nn.Module`` returning logits (then ``config`` must name the taps, or set ``lambda_act=0``).
    ``config``: an :class:`ExplainConfig`, a preset name, or None for the LoadedModel's preset.
    ``target``: the class to explain, an int or a ``(B,)`` tensor; default ``y* = argmax f(x)``.
    ``seed``: image i's mask network and backgrounds use seed ``seed + i``. ``progress``: show a tqdm bar
    (None: only for long runs). The classifier runs in eval mode without parameter gradients and is handed back
    as it came. A loss that turns NaN or inf raises ``FloatingPointError``.
    """
    setup = _resolve(clf, config)
    cfg, model = setup.config, setup.model
    check_images(x, channels=setup.channels, min_size=setup.min_size)
    dev = _device(model, device)
    x = x.detach().to(dev)
    start = time.perf_counter()
    with frozen(model), torch.enable_grad():
        taps = setup.taps if cfg.lambda_act > 0 else ()
        with torch.no_grad(), capture_activations(model, taps) as acts:   # the reference pass: no graph
            logits_x = model(x)
        acts_x = {name: [a.detach() for a in calls] for name, calls in acts.items()}
        y = _targets(target, logits_x)
        fill = make_fill(x, cfg.fill, mean=setup.mean)
        m_soft, steps_run, history = _optimise(setup, x, fill, logits_x, acts_x, y, seed, progress)
        m = m_soft > cfg.threshold
        e = apply_mask(x, m.to(x.dtype), fill)
        with torch.no_grad():
            logits_e = model(e)
        prob_after = logits_e.softmax(1).gather(1, y[:, None])[:, 0]
        prob_before = logits_x.softmax(1).gather(1, y[:, None])[:, 0]
    return Explanation(mask=m.cpu(), soft_mask=m_soft.cpu(), explanation=e.cpu(), target=y.cpu(),
                       prob_before=prob_before.cpu(), prob_after=prob_after.cpu(), history=history,
                       steps_run=steps_run.cpu(), seconds=time.perf_counter() - start, config=cfg,
                       warnings=_warnings(m, logits_e.argmax(1) == y, y))


def _optimise(setup: _Setup, x, fill, logits_x, acts_x: Acts, y, seed: int, progress):
    """Train one mask network per image; returns the soft masks, steps per image and the loss history."""
    cfg, model = setup.config, setup.model
    b, c, h, w = x.shape
    spec = default_spec((h, w))
    spec = dataclasses.replace(spec, **{k: v for k, v in (("width", cfg.mask_width), ("depth", cfg.mask_depth),
                                                          ("stride", cfg.mask_stride)) if v is not None})
    gens = [torch.Generator().manual_seed(seed + i) for i in range(b)]
    net = MaskUNet(c, (h, w), n_nets=b, spec=spec, init_keep=cfg.init_keep, generators=gens).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    weights = {k[len("lambda_"):]: v for k, v in dataclasses.asdict(cfg).items() if k.startswith("lambda_") and v > 0}
    history: dict[str, list[float]] = {name: [] for name in [*weights, "total", "hard_area", "kept"]}
    active = torch.ones(b, dtype=torch.bool, device=x.device)
    unchanged = torch.zeros(b, dtype=torch.long, device=x.device)
    ref_m = torch.zeros(b, 1, h, w, dtype=torch.bool, device=x.device)
    out_soft = torch.zeros(b, 1, h, w, device=x.device)
    out_area = torch.ones(b, device=x.device)
    feasible = torch.zeros(b, dtype=torch.bool, device=x.device)
    steps_run = torch.zeros(b, dtype=torch.long, device=x.device)
    show = progress if progress is not None else cfg.steps * b >= PROGRESS_MIN_WORK
    bar = tqdm(total=cfg.steps, desc="explain", disable=not show, leave=False)
    try:
        for step in range(cfg.steps):
            idx = active.nonzero()[:, 0]
            xi, yi, fi, zx = x[idx], y[idx], fill[idx], logits_x[idx]
            m_soft = net(xi, None if len(idx) == b else idx)
            hard = step >= cfg.soft_steps
            m_fwd = straight_through(m_soft, cfg.threshold) if hard else m_soft
            kinds, gi = _kinds_at(cfg, step), [gens[i] for i in idx.tolist()]
            terms, kept = _terms(setup, weights, xi, fi, zx, m_soft, m_fwd, yi, kinds,
                                 {k: [a[idx] for a in v] for k, v in acts_x.items()}, gi)
            total = sum(weights[k] * terms[k] for k in weights)
            if not torch.isfinite(total).all():
                bad = [k for k, v in terms.items() if not torch.isfinite(v).all()]
                raise FloatingPointError(f"the loss became NaN or inf at step {step} (terms {bad}); lower lr or "
                                         "the weights of those terms")
            m = m_soft.detach() > cfg.threshold
            if not hard:
                # The forward passes saw m_soft: check the constraints on the hard mask itself.
                kept = _constraints_hold(setup, weights, xi, fi, m.to(x.dtype), yi, kinds, gi)
            kept = kept & m.flatten(1).any(1)   # an empty mask explains nothing, even if the fill alone keeps the class
            for k in weights:
                history[k].append(float(terms[k].detach().mean()))
            history["total"].append(float(total.detach().mean()))
            history["hard_area"].append(float(m.float().mean()))
            history["kept"].append(float(kept.float().mean()))
            # Compare with a reference that moves only when the mask leaves its neighbourhood, so a slow drift
            # adds up and resets the count while flicker of a few boundary pixels does not.
            same = _iou(m, ref_m[idx]) >= cfg.stable_iou
            unchanged[idx] = torch.where(same, unchanged[idx] + 1, 0)
            ref_m[idx] = torch.where(same.view(-1, 1, 1, 1), ref_m[idx], m)
            keep = _keep(cfg.keep, kept, feasible[idx], m.flatten(1).float().mean(1), out_area[idx])
            out_soft[idx[keep]], out_area[idx[keep]] = m_soft.detach()[keep], m[keep].flatten(1).float().mean(1)
            steps_run[idx] = step + 1
            feasible[idx] |= kept
            if cfg.patience is not None:
                decided = losses.binarisation_loss(m_soft.detach()) <= cfg.stop_max_bin
                active[idx[(unchanged[idx] >= cfg.patience) & kept & decided]] = False
            if step == cfg.soft_steps - 1:
                # End of the soft warm-up: the straight-through phase only repairs masks that break the constraints.
                active[idx[kept]] = False
            bar.update(1)
            bar.set_postfix(loss=history["total"][-1], training=int(active.sum()))
            if step == cfg.steps - 1 or not active.any():
                break
            opt.zero_grad(set_to_none=True)
            total.sum().backward()  # sum, not mean: each image's gradient is independent of the batch size
            opt.step()
    finally:
        bar.close()
    return out_soft, steps_run, history


def _keep(rule: str, kept, was_feasible, area, kept_area) -> torch.Tensor:
    """``(b,)`` bool: replace the mask held for each image by this step's mask (``ExplainConfig.keep``)?

    Until an image has had a feasible step, its latest mask is held whatever the rule.
    """
    if rule == "final":
        return torch.ones_like(kept)
    if rule == "last_feasible":
        return ~was_feasible | kept
    return ~was_feasible | (kept & (area <= kept_area))


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(b,)`` IoU of two bool masks ``(b, 1, H, W)``; 1 when both are empty."""
    inter, union = (a & b).flatten(1).sum(1), (a | b).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), 1.0)


def _kinds_at(cfg: ExplainConfig, step: int) -> tuple[str, ...]:
    """The background kinds drawn at ``step``: all of them, or ``backgrounds_per_step`` of them in turn."""
    k = cfg.backgrounds_per_step
    if k is None:
        return cfg.backgrounds
    n = len(cfg.backgrounds)
    return tuple(cfg.backgrounds[(step * k + j) % n] for j in range(k))


def _draw_backgrounds(setup: _Setup, x, kinds, gens) -> torch.Tensor:
    """Backgrounds ``(K, b, C, H, W)``, each image from its own generator, so its draws do not depend on
    which other images share the batch."""
    return torch.cat([random_backgrounds(x[j:j + 1], kinds, mean=setup.mean, generator=g)
                      for j, g in enumerate(gens)], 1)


def _terms(setup: _Setup, weights, x, fill, logits_x, m_soft, m_fwd, y, kinds, acts_x: Acts, gens):
    """Per-image loss terms ``{name: (b,)}`` and whether each image keeps its label on ``e`` and on every
    background composite.

    ``m_fwd`` is the mask the forward passes use: the straight-through mask (paper), or ``m_soft`` during the
    soft warm-up. Backgrounds of ``kinds`` are drawn from ``gens`` (one generator per image).
    """
    cfg, model = setup.config, setup.model
    e = apply_mask(x, m_fwd, fill)
    with capture_activations(model, setup.taps if "act" in weights else ()) as acts_e:
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
        r = _draw_backgrounds(setup, x, kinds, gens)
        logits_bg = model(losses.background_composites(x, m_fwd, r).flatten(0, 1)).view(len(r), len(x), -1)
        terms["rob"] = losses.sufficiency_loss(logits_bg, y, form=cfg.rob_form, logits_x=logits_x,
                                               temperature=cfg.temperature)
        kept = kept & (logits_bg.argmax(2) == y).all(0)
    if "nec" in weights:
        logits_comp = model(losses.complement(x, m_fwd, fill))
        terms["nec"] = losses.necessity_loss(logits_x, logits_comp, y, margin=cfg.nec_margin, form=cfg.nec_form)
    return terms, kept


@torch.no_grad()
def _constraints_hold(setup: _Setup, weights, x, fill, m, y, kinds, gens) -> torch.Tensor:
    """``(b,)`` bool: the hard mask ``m`` keeps the label on ``e`` and on fresh backgrounds of ``kinds``."""
    kept = setup.model(apply_mask(x, m, fill)).argmax(1) == y
    if "rob" in weights:
        r = _draw_backgrounds(setup, x, kinds, gens)
        logits_bg = setup.model(losses.background_composites(x, m, r).flatten(0, 1)).view(len(r), len(x), -1)
        kept = kept & (logits_bg.argmax(2) == y).all(0)
    return kept


def _warnings(m: torch.Tensor, kept: torch.Tensor, y: torch.Tensor) -> tuple[str, ...]:
    """One line per image whose mask collapsed (empty or full) or whose explanation lost the label."""
    area = m.flatten(1).float().mean(1)
    out = []
    for i in range(len(m)):
        if area[i] == 0:
            out.append(f"image {i}: empty mask (collapsed); lower lambda_area / lambda_tv or raise lambda_ce")
        elif area[i] == 1:
            out.append(f"image {i}: full mask (nothing removed); raise lambda_area")
        if not kept[i]:
            out.append(f"image {i}: the explanation does not keep the label {int(y[i])}")
    return tuple(out)
