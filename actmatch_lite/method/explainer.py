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

Three settings go beyond the paper (all off in the ``paper-resnet18`` preset, see ``ExplainConfig``; the
bookkeeping of the last two is ``stopping.MaskTracker``):

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

from actmatch_lite._validate import InputError, check_explain_inputs
from actmatch_lite.method.capture import Acts
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.fill import apply_mask, make_fill
from actmatch_lite.method.frozen import frozen
from actmatch_lite.method.masknet import MaskUNet, default_spec
from actmatch_lite.method.objective import (constraints_met, explanation_warnings, feasible, fill_kept, kinds_at,
                                            necessary, objective)
from actmatch_lite.method.setup import (Setup, active_weights, classifier_device, reference_pass, resolve,
                                        resolve_targets)
from actmatch_lite.method.stopping import MaskTracker
from actmatch_lite.progress import progress_bar

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
    label_kept: torch.Tensor    # (B,) bool: argmax f(e) = y* (top-1 kept: what "label kept" means everywhere)
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
    # counts image-steps, so that one long explanation (paper-resnet18: 880 steps) shows its progress and time left
    bar = progress_bar(total=b * cfg.steps, desc=f"explain {b} image{'s' if b > 1 else ''}", unit="step",
                       disable=not show, leave=False)
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
    return _join(chunks, cfg, start)


def _join(chunks: list[dict], cfg: ExplainConfig, start: float) -> Explanation:
    """The :class:`Explanation` of the whole batch from its chunks' results (``_explain_chunk``), in order;
    ``start``: ``time.perf_counter()`` when ``explain`` started on them."""
    part = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0] if k not in ("history", "counts")}
    history = chunks[0]["history"] if len(chunks) == 1 else _merge_histories(chunks)
    return Explanation(mask=part["m"], soft_mask=part["m_soft"], explanation=part["e"], target=part["y"],
                       prob_before=part["prob_before"], prob_after=part["prob_after"], label_kept=part["kept"],
                       history=history,
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
    of images training at each step. ``bar`` (tqdm) counts image-steps: each step advances it by the images
    trained, and an image that stops early adds the steps it will not run.

    The paper's loop (forward the mask networks, compute the objective, step Adam) plus the soft warm-up (the
    first ``soft_steps`` steps mask with ``m_soft``), the constraint test of each step's hard mask, and the
    bookkeeping of :class:`~actmatch_lite.method.stopping.MaskTracker` (which mask to return, when an image stops).
    With ``soft_steps=0``, ``patience=None`` and ``keep="final"`` it is the paper's fixed-step loop.
    """
    cfg, b = setup.config, len(x)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(b)]
    net = _mask_networks(cfg, x, gens)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    weights = active_weights(cfg)
    history: dict[str, list[float]] = {name: [] for name in [*weights, "total", "hard_area", "kept"]}
    tracker = MaskTracker.start(cfg, x)
    counts: list[int] = []
    idx = None
    for step in range(cfg.steps):
        if idx is None or not tracker.active[idx].all():   # the active images change only when some stop
            idx = tracker.active.nonzero()[:, 0]
            xi, yi, fi, zx = x[idx], y[idx], fill[idx], logits_x[idx]
            acts_i, gi = {k: [a[idx] for a in v] for k, v in acts_x.items()}, [gens[i] for i in idx.tolist()]
        m_soft = net(xi, None if len(idx) == b else idx)
        hard, kinds = step >= cfg.soft_steps, kinds_at(cfg, step)
        total, terms, tier = objective(setup, xi, fi, zx, acts_i, yi, m_soft, gi, step=step, hard=hard, kinds=kinds)
        m = m_soft.detach() > cfg.threshold
        if not hard:   # the forward passes saw m_soft: test the constraints on the hard mask itself
            tier = constraints_met(setup, weights, xi, fi, m.to(x.dtype), yi, kinds, gi)
        tier = feasible(tier, m)
        _record(history, terms, total, m, tier)
        tracker.update(idx, step, m_soft.detach(), m, tier)
        training = tracker.stop(idx, step, m_soft.detach(), tier)
        counts.append(len(idx))
        done = step == cfg.steps - 1 or training == 0
        stopped = len(idx) if done else len(idx) - training   # every active image is in idx
        bar.update(len(idx) + stopped * (cfg.steps - 1 - step))
        bar.set_postfix(step=step, loss=history["total"][-1], training=training)
        if done:
            break
        opt.zero_grad(set_to_none=True)
        total.sum().backward()  # sum, not mean: each image's gradient is independent of the batch size
        opt.step()
    return tracker.held_soft, tracker.steps_run, history, counts


def _mask_networks(cfg: ExplainConfig, x, gens) -> MaskUNet:
    """One mask network per image of ``x (b, C, H, W)``, image ``i``'s initialised from ``gens[i]``; the
    ``mask_*`` settings override ``masknet.default_spec``."""
    _, c, h, w = x.shape
    spec = default_spec((h, w))
    spec = dataclasses.replace(spec, **{k: v for k, v in (("width", cfg.mask_width), ("depth", cfg.mask_depth),
                                                          ("stride", cfg.mask_stride)) if v is not None})
    return MaskUNet(c, (h, w), n_nets=len(x), spec=spec, init_keep=cfg.init_keep, generators=gens).to(x.device)


def _record(history: dict[str, list[float]], terms, total, m, tier) -> None:
    """Append this step's means over the images training: each term, the total, the hard area and ``kept``."""
    for k, v in terms.items():
        history[k].append(float(v.detach().mean()))
    history["total"].append(float(total.detach().mean()))
    history["hard_area"].append(float(m.float().mean()))
    history["kept"].append(float((tier > 0).float().mean()))
