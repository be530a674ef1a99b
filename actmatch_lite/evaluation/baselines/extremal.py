"""Extremal perturbation (Fong, Patrick & Vedaldi, "Understanding Deep Networks via Extremal Perturbations and
Smooth Masks", ICCV 2019), the *preservation game*: the mask of a fixed area ``a`` whose preserved region keeps
the class score highest. Written from the paper; the numbers are TorchRay's (the authors' library,
``torchray.attribution.extremal_perturbation`` in ``torchray==1.0.0.2``), read from its documentation and
checked against its behaviour.

The problem and its relaxation (paper, Sec. 3)::

    m_a = argmax_{m ∈ M, |m| = a·|Ω|}  Φ(m ⊗ x)                       (the extremal perturbation)
    m_a ≈ argmax_m  Φ(m ⊗ x) − λ_t · R_a(m)                            (what is optimised)
    R_a(m) = mean_i (vecsort(m)_i − r_a,i)²                             (the rank / area constraint)

``vecsort`` sorts the N mask values in increasing order; ``r_a`` is ⌊(1 − a)·N⌋ zeros followed by ones, so
``R_a = 0`` exactly for a binary mask with ``a·N`` ones, whatever their place. ``λ_t = λ_0 · γ^t`` grows during
the optimisation (``λ_0 = 300``, ``γ = 1.0035``: ×16.5 after 800 steps).

Which pixels ``R_a`` counts (``area_over``):

* ``"image"`` (default): the N pixels of the image, so ``area`` is a fraction of the image's pixels. This is a
  deliberate departure from TorchRay: our benchmark holds every method to the same number of image pixels, and
  passes the area of our own mask.
* ``"padded"`` (TorchRay's choice): the mask on the image extended by ``M = round(σ)`` pixels beyond the first and
  the last grid point (rows ``−M … s·(⌈H/s⌉ − 1) + M``: 260 × 260 for a 224 × 224 image, 106 × 106 for 64 × 64),
  N' pixels, ``r_a`` ⌊(1 − a)·N'⌋ zeros then ones. The margin's pixels only get the tails of the kernels of the
  grid points near the border, so they are mostly low and the ``a·N'`` ones fall mostly inside the image: at the
  same ``area`` the mask keeps more of the image (up to about ``a·N'/N``: ×1.35 on 224 px, ×2.7 on 64 px;
  ``area = 0.1`` on 64-px shapes gives a mean mask of about 0.35 inside the image). The extent is TorchRay's
  exactly when σ is a multiple of the grid step (the defaults: 21 = 3·7); otherwise TorchRay rounds its margin
  up to whole grid steps.

Agreement with TorchRay 1.0.0.2 (``benchmarks/extremal_vs_torchray.md``). With ``area_over="padded"``,
``jitter="alternate"`` and every other setting at its default, this is the same computation: with TorchRay's own
mask generator and blur pyramid substituted for ours, the masks after 1, 2, 5 and 20 steps on EfficientNet-Lite0
are bit-identical to TorchRay's, so the rank penalty, reference vector, reward, weight schedule, SGD with
dampening, clamping and jitter order all agree. Our own generator and pyramid differ from TorchRay's by float
rounding only (≤ 3e-6 and ≤ 5e-7), and that rounding grows during the optimisation exactly as it does inside
TorchRay itself (TorchRay against TorchRay on the image moved by one float32 ulp): on shapes-cnn ≤ 1.1e-6 after
20 steps and 3e-7 … 6e-3 after 300 (TorchRay vs itself: up to 8e-3); on EfficientNet-Lite0, whose input gradient
jumps with tiny input changes (ReLU6 kinks), 8e-5 after one step (TorchRay vs itself: 7e-5) and binary masks with
IoU 0.93 after 150 steps (TorchRay vs itself: 0.93). Counting: ``steps=N`` returns the mask after N updates; TorchRay's ``max_iter=N`` returns the mask of
its last forward pass, before its last update, i.e. our ``steps=N − 1``.

Smooth masks (paper, Sec. 3.2, "smooth max-convolution"). The parameters ``m̄ ∈ [0, 1]`` live on a grid of
step ``s`` pixels: grid point ``v = (i, j)`` sits at pixel ``s·v``, ``i < ⌈H / s⌉``, ``j < ⌈W / s⌉``, and
points outside the grid count as 0. The mask at pixel ``u`` is a smooth maximum of kernel-weighted parameters::

    m(u) = clamp(smax_{v ∈ W(u)} g(|u − s·v|) · m̄(v), 0, 1)
    smax_T(z) = Σ_k z_k · softmax(T·z)_k                                (T = 20: close to max, differentiable)
    g(d) = exp(−2 · max(d / σ − 1/2, 0)²)                              (flat within σ/2, Gaussian tail beyond)

``W(u)`` is the ``(2R + 1)²`` grid points around ``⌊u / s⌋``, ``R = 1 + ⌈σ / s⌉``. Unlike a bilinear upsampling
of a coarse mask, the max keeps every region at least about σ pixels wide: smoothness is built in, not a
penalty with a weight to tune.

The perturbation ``m ⊗ x`` (paper, Sec. 3.3) replaces each pixel by a blend of a stack of perturbed copies
``y_l``, ``l = 0 … L − 1``, linearly interpolated at level ``m(u)·(L − 1)``::

    blur:  y_l = g_{σ_l} * x,   σ_l = σ_max · (1 − l / (L − 1))        (y_{L−1} = x, y_0 = blurred with σ_max)
    fade:  y_l = (l / (L − 1)) · x + (1 − l / (L − 1)) · fill          (interpolated: m ⊙ x + (1 − m) ⊙ fill)

The Gaussian is truncated at ``⌈4σ_l⌉`` taps and the image zero-padded, as TorchRay's ``imsmooth`` does by
default (so the strongest blur also darkens a band along the border). TorchRay's fade goes to black; here it
goes to ``fill`` (black for the default ``fill="zero"``); ``fill`` is unused by the blur.

The reward ``Φ`` (TorchRay's ``reward_func``) reads **logits** ``z``::

    "logit" (default, TorchRay's ``simple_reward``):   Φ = z_{y*}
    "contrastive" (``contrastive_reward``):           Φ = z_{y*} − max_{c ≠ y*} z_c

Optimisation: ``m̄ = 1`` everywhere at the start (all preserved), SGD with momentum 0.9 and dampening 0.9, learning
rate 0.01, on ``−Σ_b (Φ_b − λ_t · R_a(m_b))``; after each step ``m̄`` is clamped to [0, 1]. Jitter: the perturbed
image is flipped left-right before the classifier on some steps (``jitter=True``: each step with probability 1/2,
drawn from a generator seeded with ``seed``; ``"alternate"``: every even step, which is what TorchRay 1.0.0.2
does although its docstring says "randomly"; ``False``: never).

Defaults and where they come from (TorchRay 1.0.0.2's ``extremal_perturbation`` signature and body, which are the
settings of the paper's experiments):

=====================  ==========  ==============================================================
setting                default     source
=====================  ==========  ==============================================================
``area``               0.1         TorchRay ``areas=[0.1]`` (the benchmark passes our mask's area)
``steps``              800         TorchRay ``max_iter=800``
``lr``                 0.01        TorchRay ``learning_rate = 0.01`` (SGD)
``momentum``           0.9         TorchRay ``momentum = 0.9`` (also the dampening)
``area_weight``        300         TorchRay ``regul_weight = 300`` (λ_0)
``area_weight_growth`` 1.0035      TorchRay ``regul_weight *= 1.0035`` each step (γ)
``grid_step``          7           TorchRay ``step=7`` (s, pixels)
``sigma``              21          TorchRay ``sigma=21`` (σ of the mask kernel, pixels)
``coldness``           20          TorchRay ``MaskGenerator.coldness = 20`` (T of smax)
``num_levels``         8           TorchRay ``num_levels=8`` (L)
``max_blur``           20          TorchRay ``Perturbation(max_blur=20)`` (σ_max, pixels)
``perturbation``       "blur"      TorchRay ``perturbation='blur'``; the paper's choice
``reward``             "logit"     TorchRay ``reward_func=simple_reward``
``jitter``             True        TorchRay ``jitter=True`` (see above for random vs alternate)
``area_over``          "image"     TorchRay counts the area over its padded mask: ``"padded"`` (see above)
=====================  ==========  ==============================================================

TorchRay explains one image with several areas; here each image of a batch gets its own mask at its own area.
Every term is per image and SGD is element-wise, so a batch gives the same masks as each image alone.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from actmatch_lite._validate import InputError, check_seed
from actmatch_lite.evaluation.baselines._common import prepare
from actmatch_lite.method.fill import apply_mask
from actmatch_lite.method.frozen import frozen

AREA = 0.1
STEPS = 800
LR = 0.01
MOMENTUM = 0.9
AREA_WEIGHT = 300.0
AREA_WEIGHT_GROWTH = 1.0035
GRID_STEP = 7
SIGMA = 21.0
COLDNESS = 20.0
NUM_LEVELS = 8
MAX_BLUR = 20.0
PERTURBATIONS = ("blur", "fade")
REWARDS = ("logit", "contrastive")
JITTERS = (True, False, "alternate")
AREAS_OVER = ("image", "padded")


# ---------------------------------------------------------------- the smooth mask
def mask_kernel(d: torch.Tensor, sigma: float) -> torch.Tensor:
    """``g(d) = exp(−2 · max(d / σ − 1/2, 0)²)``: 1 up to ``σ/2`` pixels, then a Gaussian tail."""
    return torch.exp(-2 * (d / sigma - 0.5).clamp(min=0) ** 2)


def smooth_max(z: torch.Tensor, dim: int, coldness: float = COLDNESS) -> torch.Tensor:
    """``smax_T(z) = Σ_k z_k · softmax(T·z)_k`` along ``dim``: tends to ``max_k z_k`` as ``T → ∞``."""
    return (z * (coldness * z).softmax(dim)).sum(dim)


def mask_extent(n: int, grid_step: int, margin: int = 0) -> torch.Tensor:
    """Pixel coordinates along one axis of the mask's domain: ``0 … n − 1`` for ``margin = 0`` (the image), else
    from ``−margin`` to ``s·(⌈n / s⌉ − 1) + margin``: ``margin`` pixels beyond the first and the last grid point
    (at least to the image's last pixel ``n − 1``, should the margin be shorter than the grid step)."""
    if margin == 0:
        return torch.arange(n, dtype=torch.float64)
    end = max(grid_step * (math.ceil(n / grid_step) - 1) + margin, n - 1)
    return torch.arange(-margin, end + 1, dtype=torch.float64)


def window_weights(size: tuple[int, int], grid_step: int, sigma: float, margin: int = 0) -> torch.Tensor:
    """``g(|u − s·v|) (K², H', W')`` for every pixel ``u`` and the ``K² = (2R + 1)²`` grid points ``v`` of its window.

    Window entry ``k = (di + R)·(2R + 1) + (dj + R)`` is the grid point ``(⌊u_i / s⌋ + di, ⌊u_j / s⌋ + dj)``. The
    pixels ``u`` are the image's (``H' × W' = size``) for ``margin = 0``, else those of :func:`mask_extent`.
    """
    r = 1 + math.ceil(sigma / grid_step)
    offsets = torch.arange(-r, r + 1, dtype=torch.float64)
    rows, cols = (mask_extent(n, grid_step, margin) for n in size)
    # distance along each axis from the pixel to the window's grid points: (2R + 1, n)
    di = rows[None] - grid_step * (torch.div(rows, grid_step, rounding_mode="floor")[None] + offsets[:, None])
    dj = cols[None] - grid_step * (torch.div(cols, grid_step, rounding_mode="floor")[None] + offsets[:, None])
    d = (di[:, None, :, None] ** 2 + dj[None, :, None, :] ** 2).sqrt()   # (2R+1, 2R+1, H', W')
    return mask_kernel(d, sigma).reshape(-1, len(rows), len(cols)).float()


def smooth_mask(params: torch.Tensor, weights: torch.Tensor, grid_step: int,
                coldness: float = COLDNESS, margin: int = 0) -> torch.Tensor:
    """``m(u) = clamp(smax_{v ∈ W(u)} g(|u − s·v|) · m̄(v), 0, 1)`` of shape ``(B, 1, H', W')``.

    ``params`` ``m̄ (B, 1, ⌈H/s⌉, ⌈W/s⌉)``; ``weights`` from :func:`window_weights` with the same ``margin``
    (``H' × W'`` is the image for ``margin = 0``). Grid points outside the grid are 0 (zero padding).
    """
    k2, h, w = weights.shape
    r = (math.isqrt(k2) - 1) // 2
    extra = math.ceil(margin / grid_step)          # cells beyond the grid that the margin's pixels fall in
    b, _, gh, gw = params.shape
    # every grid cell's (2R+1)² neighbourhood (cells −extra … gh − 1 + extra), then each pixel takes its cell's
    p = r + extra
    hood = F.unfold(F.pad(params, (p, p, p, p)), 2 * r + 1).reshape(b, k2, gh + 2 * extra, gw + 2 * extra)
    cell_i = torch.div(torch.arange(h, device=params.device) - margin, grid_step, rounding_mode="floor") + extra
    cell_j = torch.div(torch.arange(w, device=params.device) - margin, grid_step, rounding_mode="floor") + extra
    hood = hood[:, :, cell_i][:, :, :, cell_j]                          # (B, K², H', W')
    return smooth_max(hood * weights.to(hood), 1, coldness).unsqueeze(1).clamp(0, 1)


# ---------------------------------------------------------------- the area constraint
def rank_penalty(m: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """``R_a(m) (B,) = mean_i (vecsort(m)_i − r_a,i)²``, ``r_a`` = ⌊(1 − a)·N⌋ zeros then ones, ``a = area (B,)``."""
    v = m.flatten(1).sort(1).values
    n = v.shape[1]
    zeros = torch.floor((1 - area.double()) * n).to(v.device)
    ref = (torch.arange(n, device=v.device)[None] >= zeros[:, None]).to(v)
    return ((v - ref) ** 2).mean(1)


# ---------------------------------------------------------------- the perturbation
def gaussian_blur_zero_pad(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``g_σ * x`` with a Gaussian truncated at ``⌈4σ⌉`` taps, normalised over its taps, zero padding; σ = 0: ``x``."""
    if sigma <= 0:
        return x
    width = math.ceil(4 * sigma)
    t = torch.arange(-width, width + 1, dtype=torch.float64)
    taps = torch.exp(-t ** 2 / (2 * sigma ** 2))
    taps = (taps / taps.sum()).to(x)
    c = x.shape[1]
    x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(width, 0), groups=c)
    return F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, width), groups=c)


def blur_stack(x: torch.Tensor, num_levels: int = NUM_LEVELS, max_blur: float = MAX_BLUR) -> torch.Tensor:
    """``y (L, B, C, H, W)``, ``y_l = g_{σ_l} * x`` with ``σ_l = σ_max · (1 − l / (L − 1))``: ``y_{L−1} = x``."""
    return torch.stack([gaussian_blur_zero_pad(x, max_blur * (1 - l / (num_levels - 1)))
                        for l in range(num_levels)])


def blend_stack(stack: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``m ⊗ x (B, C, H, W)``: per pixel, ``y`` linearly interpolated at level ``m·(L − 1)``.

    With ``q = m·(L − 1)``, ``l = min(⌊q⌋, L − 2)``: ``(1 − (q − l))·y_l + (q − l)·y_{l+1}`` (the gradient flows
    through ``q − l``).
    """
    levels = stack.shape[0]
    q = m * (levels - 1)
    low = q.detach().floor().clamp(0, levels - 2)
    frac = q - low
    index = low.long().unsqueeze(0).expand(1, *stack.shape[1:])
    y0, y1 = stack.gather(0, index)[0], stack.gather(0, index + 1)[0]
    return y0 + frac * (y1 - y0)


# ---------------------------------------------------------------- the reward
def logit_reward(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``Φ (B,) = z_{y*}``: the target logit (TorchRay's default ``simple_reward``)."""
    return z.gather(1, y.view(-1, 1)).squeeze(1)


def contrastive_reward(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``Φ (B,) = z_{y*} − max_{c ≠ y*} z_c`` (TorchRay's ``contrastive_reward``)."""
    others = z.scatter(1, y.view(-1, 1), float("-inf")).max(1).values
    return logit_reward(z, y) - others


# ---------------------------------------------------------------- input checks
def _check_area(area, batch: int) -> torch.Tensor:
    """``area`` as a float64 tensor ``(B,)``, every value in (0, 1)."""
    if isinstance(area, bool) or not isinstance(area, (numbers.Real, torch.Tensor, list, tuple)):
        raise InputError(f"area must be a float in (0, 1) or one per image (a tensor (B,)), got "
                         f"{type(area).__name__}; pass e.g. area=0.1 (10 % of the pixels).")
    a = torch.as_tensor(area, dtype=torch.float64).detach().cpu().reshape(-1)
    if a.numel() == 1:
        a = a.expand(batch)
    if a.numel() != batch:
        raise InputError(f"area has {a.numel()} values but the batch has {batch} images; give one float for all "
                         "of them or one area per image.")
    if not (torch.isfinite(a) & (a > 0) & (a < 1)).all():
        bad = a[~(torch.isfinite(a) & (a > 0) & (a < 1))][0].item()
        raise InputError(f"area must be in (0, 1), a fraction of the image's pixels, got {bad}; pass e.g. "
                         "area=0.1 (10 % of the pixels), not a pixel count.")
    return a


def _check_options(perturbation, reward, jitter, steps, grid_step, num_levels, area_over) -> None:
    if not isinstance(area_over, str) or area_over not in AREAS_OVER:
        raise InputError(f"area_over must be 'image' (the area is a fraction of the image's pixels) or 'padded' "
                         f"(TorchRay's: of its mask with a margin of sigma pixels), got {area_over!r}.")
    if perturbation not in PERTURBATIONS:
        raise InputError(f"unknown perturbation {perturbation!r}; use 'blur' (the paper's) or 'fade' (to fill).")
    if reward not in REWARDS:
        raise InputError(f"unknown reward {reward!r}; use 'logit' (TorchRay's default) or 'contrastive'.")
    if not any(jitter is j or (isinstance(j, str) and jitter == j) for j in JITTERS):
        raise InputError(f"jitter must be True (random flips), 'alternate' (TorchRay's) or False, got {jitter!r}.")
    for name, value, low in (("steps", steps, 0), ("grid_step", grid_step, 1), ("num_levels", num_levels, 2)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise InputError(f"{name} must be an int >= {low}, got {value!r}.")


# ---------------------------------------------------------------- the baseline
def extremal_perturbation_scores(clf: nn.Module, x: torch.Tensor, target=None, *, layer=None, seed: int = 0,
                                 fill="zero", area=AREA, steps: int = STEPS, perturbation: str = "blur",
                                 reward: str = "logit", jitter: bool | str = True, lr: float = LR,
                                 momentum: float = MOMENTUM, area_weight: float = AREA_WEIGHT,
                                 area_weight_growth: float = AREA_WEIGHT_GROWTH, grid_step: int = GRID_STEP,
                                 sigma: float = SIGMA, coldness: float = COLDNESS, num_levels: int = NUM_LEVELS,
                                 max_blur: float = MAX_BLUR, area_over: str = "image") -> torch.Tensor:
    """The extremal-perturbation soft mask ``m (B, 1, H, W)`` in [0, 1], one independent mask per image.

    Maximises ``Φ(m ⊗ x) − λ_t · R_a(m)`` over the smooth masks (formulas and defaults: module docstring).
    ``area``: the target area, a float or a tensor ``(B,)`` of fractions of the pixels in (0, 1) (default 0.1,
    TorchRay's); :func:`actmatch_lite.evaluation.methods.run_baseline` passes the area of our mask.
    ``perturbation``: ``"blur"`` (default) or ``"fade"`` to ``fill``; ``fill`` is unused by the blur. ``seed``
    fixes the random jitter (a local generator; the global RNG is untouched). ``layer`` is accepted for the
    registry's common signature and unused. ``area_over``: ``"image"`` (default, ``area`` is a fraction of the
    image's pixels) or ``"padded"`` (TorchRay's: of its mask with a margin of σ pixels). ``steps=N`` returns the
    mask after N updates (TorchRay's ``max_iter=N + 1``). The classifier is frozen during the call and handed back
    unchanged.
    """
    seed = check_seed(seed)
    _check_options(perturbation, reward, jitter, steps, grid_step, num_levels, area_over)
    y, fill_img = prepare(clf, x, target, fill if perturbation == "fade" else "zero")
    a = _check_area(area, x.shape[0])
    x = x.detach()
    h, w = x.shape[-2:]
    margin = round(sigma) if area_over == "padded" else 0
    weights = window_weights((h, w), grid_step, sigma, margin).to(x.device)
    params = torch.ones(x.shape[0], 1, math.ceil(h / grid_step), math.ceil(w / grid_step), dtype=x.dtype,
                        device=x.device, requires_grad=True)
    opt = torch.optim.SGD([params], lr=lr, momentum=momentum, dampening=momentum)
    if perturbation == "blur":
        stack = blur_stack(x, num_levels, max_blur)

        def perturb(m):
            return blend_stack(stack, m)
    else:
        def perturb(m):
            return apply_mask(x, m, fill_img)
    phi = logit_reward if reward == "logit" else contrastive_reward
    if jitter is True:
        flips = (torch.rand(steps, generator=torch.Generator().manual_seed(seed)) < 0.5).tolist()
    else:
        flips = [jitter == "alternate" and t % 2 == 0 for t in range(steps)]

    lam = float(area_weight)
    with frozen(clf), torch.enable_grad():
        for t in range(steps):
            full = smooth_mask(params, weights, grid_step, coldness, margin)
            m = full[..., margin:margin + h, margin:margin + w]
            e = perturb(m)
            if flips[t]:
                e = e.flip(-1)
            energy = phi(clf(e), y) - lam * rank_penalty(full, a)
            opt.zero_grad()
            (-energy.sum()).backward()
            opt.step()
            with torch.no_grad():
                params.clamp_(0, 1)
            lam *= area_weight_growth
        with torch.no_grad():
            return smooth_mask(params, weights, grid_step, coldness, margin)[..., margin:margin + h,
                                                                              margin:margin + w]
