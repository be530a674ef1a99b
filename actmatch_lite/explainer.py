"""``explain``: activation matching in the paper's per-image regime.

Suhail, Anand, Sethi (2025), "Activation Matching for Explanation Generation", arXiv 2509.23051.

For every image a fresh mask network is trained from scratch to minimise

    L = λ_act Σ_ℓ α_ℓ d_ℓ(φ_ℓ(x), φ_ℓ(e)) + λ_ce L_CE + λ_kl L_KL + λ_area L_area + λ_bin L_bin + λ_tv L_TV
        + λ_rob L_rob + λ_nec L_nec,        e = m_st ⊙ x + (1 - m_st) ⊙ fill.

A batch of B images is cut into chunks of ``chunk_size`` (64 by default: memory grows with the chunk). A chunk
trains one independent network per image in one call (``masknet.MaskUNet`` with ``n_nets = b``) on the SUM of
the per-image losses, so image i's gradients depend on image i only: images never leak into each other. Each
image has its own seed (``seed + i``) for its network and its random backgrounds, and stops early on its own.

What a seed fixes, exactly: the same images in the same chunks, on the same device with the same number of CPU
threads, give bit-identical results, and a chunked call is bit for bit the calls on each chunk alone (seed
``seed + first index``, as the benchmarks run). An image alone or in another batch, or under another thread
count, is explained from the same start but not bit for bit the same way: PyTorch's CPU kernels pick their
algorithm and summation order by shape (a batch of one takes another conv path than a batch of two; a linear
layer's input gradient rounds differently below a batch of four; the mask network's grouped convs change kernel
with the number of networks and of threads), and a hundred steps of mask training amplify those last-bit
differences into different, equally plausible masks (shapes preset, 8 images alone against one batch of 8:
IoU 0.62 to 1).

Three settings go beyond the paper (all off in the ``paper-resnet18`` preset, see ``ExplainConfig``):

* ``soft_steps``: a warm-up that masks with ``m_soft`` itself before the straight-through mask. A small
  network trained from scratch in ~100 steps collapses to an empty or full mask under ``m_st`` from step one
  (the authors train a 7.8 M-parameter U-Net for 880 steps at lr 5e-5). Images whose hard mask satisfies the
  constraints at the end of the warm-up stop there; the others go on under ``m_st`` to repair their mask.
* ``patience`` / ``stable_iou`` / ``stop_max_bin``: an image stops once its hard mask has stayed within IoU
  ``stable_iou`` of a reference for ``patience`` steps, its soft mask is decided (binarisation loss at most
  ``stop_max_bin``) and it meets the constraints: the label is kept on ``e`` and on that step's backgrounds, and
  lost when the mask region is removed (``λ_nec > 0``); the test is ``objective.constraints_met``.
* ``keep``: return the final mask (authors), the latest one that met those constraints, or the smallest. A mask
  that keeps the label but is not necessary ranks between one that meets everything and one that loses the
  label, so an image whose necessity is never met still returns a sufficient mask.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from . import losses
from ._validate import InputError, check_explain_inputs
from .capture import Acts
from .config import ExplainConfig
from .fill import apply_mask, make_fill
from .frozen import frozen
from .masknet import MaskUNet, default_spec
from .objective import (Setup, active_weights, classifier_device, constraints_met, explanation_warnings, feasible,
                        fill_kept, kinds_at, necessary, objective, reference_pass, resolve, resolve_targets)

PROGRESS_MIN_WORK = 2000  # progress=None shows a bar when steps × images reaches this (about a second of work)
DEFAULT_CHUNK_SIZE = 64   # images trained together: bounds memory (about 10 MB per 64x64 image); the benchmarks' batch


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
    warnings: tuple[str, ...]   # one line per problem image: collapsed mask, label lost, vacuous sufficiency
    #                             (the fill alone is classified y*), or, when lambda_nec > 0, necessity not met

    @property
    def area(self) -> torch.Tensor:
        """``(B,)`` fraction of pixels each hard mask keeps."""
        return self.mask.flatten(1).float().mean(1)


def explain(clf, x: torch.Tensor, *, config: ExplainConfig | str | None = None, target=None, seed: int = 0,
            device=None, progress: bool | None = None, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> Explanation:
    """Explain the classifier's decision on each image of ``x (B, C, H, W)`` (pixels in [0, 1]).

    ``clf``: a ``LoadedModel`` (its taps, tap weights, mean colour and preset are the defaults) or an
    ``nn.Module`` returning logits (then ``config`` must name the taps, or set ``lambda_act=0``).
    ``config``: an :class:`ExplainConfig`, a preset name, or None for the LoadedModel's preset.
    ``target``: the class to explain: an int or a class name (a LoadedModel's ``class_names``) for every image, or
    one per image (a list or a ``(B,)`` integer tensor); default ``y* = argmax f(x)``. ``x`` is cast to the
    classifier's float dtype (float64 from NumPy, float16 and bfloat16 become float32). Sizes: at least 8x8 (the
    mask network), within a LoadedModel's limits (exactly ``input_size`` when ``min_size == input_size``, a
    fixed-size head); more than 4 times ``input_size`` per side warns (each step costs the pixels: resize).
    ``seed``: an int; image i's mask network and backgrounds use seed ``seed + i``. ``progress``: show a tqdm bar
    (None: only for long runs); it counts images. ``chunk_size``: images trained together (None: all at once);
    memory grows with it (about 10 MB per 64x64 shapes image, see the README), and the result is bit for bit
    that of explaining each chunk on its own with its seed. The classifier runs in eval mode without parameter
    gradients and is handed back as it came. A loss that turns NaN or inf raises ``FloatingPointError``.
    """
    setup = resolve(clf, config)
    cfg, model = setup.config, setup.model
    x, target, seed = check_explain_inputs(clf, x, target=target, seed=seed)
    dev = classifier_device(model, device)
    x = x.detach().to(dev)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive int or None, got {chunk_size!r}; pass e.g. chunk_size=64 "
                         "(memory grows with it) or None to train every image at once")
    start = time.perf_counter()
    b = len(x)
    size = chunk_size or b
    show = progress if progress is not None else cfg.steps * b >= PROGRESS_MIN_WORK
    bar = tqdm(total=b, desc="explain", unit="img", disable=not show, leave=False)
    chunks, y_all = [], None
    try:
        with frozen(model), torch.enable_grad():
            for lo in range(0, b, size):
                xc = x[lo:lo + size]
                logits_x, acts_x = reference_pass(setup, xc)
                if target is not None and y_all is None:   # checked once against the whole batch, before any training
                    y_all = resolve_targets(target, logits_x.new_zeros(b, logits_x.shape[1]))
                y = resolve_targets(None if y_all is None else y_all[lo:lo + size], logits_x)
                chunks.append(_explain_chunk(setup, xc, logits_x, acts_x, y, seed + lo, bar))
    finally:
        bar.close()
    part = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0] if k not in ("history", "counts")}
    history = chunks[0]["history"] if len(chunks) == 1 else _merge_histories(chunks)
    return Explanation(mask=part["m"], soft_mask=part["m_soft"], explanation=part["e"], target=part["y"],
                       prob_before=part["prob_before"], prob_after=part["prob_after"], history=history,
                       steps_run=part["steps_run"], seconds=time.perf_counter() - start, config=cfg,
                       warnings=explanation_warnings(part["m"], part["kept"], part["y"], part["vacuous"],
                                                     part.get("nec")))


def _explain_chunk(setup: Setup, x, logits_x, acts_x: Acts, y, seed: int, bar) -> dict:
    """Explain one chunk ``x (b, C, H, W)`` (image ``j`` with seed ``seed + j``); its tensors, on the CPU."""
    cfg, model = setup.config, setup.model
    fill = make_fill(x, cfg.fill, mean=setup.mean)
    m_soft, steps_run, history, counts = _optimise(setup, x, fill, logits_x, acts_x, y, seed, bar)
    m = m_soft > cfg.threshold
    e = apply_mask(x, m.to(x.dtype), fill)
    with torch.no_grad():
        logits_e = model(e)
    out = {"m": m, "m_soft": m_soft, "e": e, "y": y, "steps_run": steps_run, "kept": logits_e.argmax(1) == y,
           "prob_before": logits_x.softmax(1).gather(1, y[:, None])[:, 0],
           "prob_after": logits_e.softmax(1).gather(1, y[:, None])[:, 0], "vacuous": fill_kept(setup, fill, y)}
    if "nec" in active_weights(cfg):
        out["nec"] = necessary(setup, x, fill, m, y)
    return {**{k: v.cpu() for k, v in out.items()}, "history": history, "counts": counts}


def _merge_histories(chunks: list[dict]) -> dict[str, list[float]]:
    """Each step's mean over the images still training in every chunk: ``Σ_c n_c h_c / Σ_c n_c``."""
    merged: dict[str, list[float]] = {}
    for k in chunks[0]["history"]:
        merged[k] = []
        for t in range(max(len(c["counts"]) for c in chunks)):
            ran = [c for c in chunks if t < len(c["counts"])]
            merged[k].append(sum(c["counts"][t] * c["history"][k][t] for c in ran) / sum(c["counts"][t] for c in ran))
    return merged


def _optimise(setup: Setup, x, fill, logits_x, acts_x: Acts, y, seed: int, bar):
    """Train one mask network per image; returns the soft masks, steps per image, the loss history and the number
    of images training at each step. ``bar`` (tqdm) advances by one per image that stops."""
    cfg, model = setup.config, setup.model
    b, c, h, w = x.shape
    spec = default_spec((h, w))
    spec = dataclasses.replace(spec, **{k: v for k, v in (("width", cfg.mask_width), ("depth", cfg.mask_depth),
                                                          ("stride", cfg.mask_stride)) if v is not None})
    gens = [torch.Generator().manual_seed(seed + i) for i in range(b)]
    net = MaskUNet(c, (h, w), n_nets=b, spec=spec, init_keep=cfg.init_keep, generators=gens).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    weights = active_weights(cfg)
    history: dict[str, list[float]] = {name: [] for name in [*weights, "total", "hard_area", "kept"]}
    active = torch.ones(b, dtype=torch.bool, device=x.device)
    unchanged = torch.zeros(b, dtype=torch.long, device=x.device)
    ref_m = torch.zeros(b, 1, h, w, dtype=torch.bool, device=x.device)
    out_soft = torch.zeros(b, 1, h, w, device=x.device)
    out_area = torch.ones(b, device=x.device)
    held_met = torch.zeros(b, dtype=torch.long, device=x.device)    # tier of the mask held (objective.tiers)
    steps_run = torch.zeros(b, dtype=torch.long, device=x.device)
    counts: list[int] = []
    idx = None
    for step in range(cfg.steps):
        if idx is None or not active[idx].all():   # the active images change only when some stop
            idx = active.nonzero()[:, 0]
            xi, yi, fi, zx = x[idx], y[idx], fill[idx], logits_x[idx]
            acts_i, gi = {k: [a[idx] for a in v] for k, v in acts_x.items()}, [gens[i] for i in idx.tolist()]
        m_soft = net(xi, None if len(idx) == b else idx)
        hard = step >= cfg.soft_steps
        kinds = kinds_at(cfg, step)
        total, terms, met = objective(setup, xi, fi, zx, acts_i, yi, m_soft, gi, step=step, hard=hard,
                                      kinds=kinds)
        m = m_soft.detach() > cfg.threshold
        if not hard:
            # The forward passes saw m_soft: check the constraints on the hard mask itself.
            met = constraints_met(setup, weights, xi, fi, m.to(x.dtype), yi, kinds, gi)
        met = feasible(met, m)
        holds = met == 2
        for k in weights:
            history[k].append(float(terms[k].detach().mean()))
        history["total"].append(float(total.detach().mean()))
        history["hard_area"].append(float(m.float().mean()))
        history["kept"].append(float((met > 0).float().mean()))
        # Compare with a reference that moves only when the mask leaves its neighbourhood, so a slow drift
        # adds up and resets the count while flicker of a few boundary pixels does not.
        same = _iou(m, ref_m[idx]) >= cfg.stable_iou
        unchanged[idx] = torch.where(same, unchanged[idx] + 1, 0)
        ref_m[idx] = torch.where(same.view(-1, 1, 1, 1), ref_m[idx], m)
        keep = _keep(cfg.keep, met, held_met[idx], m.flatten(1).float().mean(1), out_area[idx])
        out_soft[idx[keep]], out_area[idx[keep]] = m_soft.detach()[keep], m[keep].flatten(1).float().mean(1)
        held_met[idx[keep]] = met[keep]
        steps_run[idx] = step + 1
        if cfg.patience is not None:
            decided = losses.binarisation_loss(m_soft.detach()) <= cfg.stop_max_bin
            active[idx[(unchanged[idx] >= cfg.patience) & holds & decided]] = False
        if step == cfg.soft_steps - 1:
            # End of the soft warm-up: the straight-through phase only repairs masks that break the constraints.
            active[idx[holds]] = False
        counts.append(len(idx))
        training = int(active.sum())     # every active image is in idx, so len(idx) - training stopped at this step
        done = step == cfg.steps - 1 or training == 0
        bar.update(len(idx) if done else len(idx) - training)
        bar.set_postfix(step=step, loss=history["total"][-1], training=training)
        if done:
            break
        opt.zero_grad(set_to_none=True)
        total.sum().backward()  # sum, not mean: each image's gradient is independent of the batch size
        opt.step()
    return out_soft, steps_run, history, counts


def _keep(rule: str, met, held_met, area, held_area) -> torch.Tensor:
    """``(b,)`` bool: replace the mask held for each image by this step's mask (``ExplainConfig.keep``)?

    ``met`` / ``held_met``: the tiers (``objective.tiers``) of this step's mask and of the held one. A higher tier
    always wins; within the held tier, ``last_feasible`` takes the latest mask and ``smallest_feasible`` the
    smaller one. While every mask so far has lost the label (tier 0), the latest one is held whatever the rule.
    """
    if rule == "final":
        return torch.ones_like(met, dtype=torch.bool)
    if rule == "last_feasible":
        return met >= held_met
    return (met > held_met) | ((met == held_met) & ((met == 0) | (area <= held_area)))


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(b,)`` IoU of two bool masks ``(b, 1, H, W)``; 1 when both are empty."""
    inter, union = (a & b).flatten(1).sum(1), (a | b).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), 1.0)
