"""What replaces removed pixels: the fill, and the random backgrounds of the sufficiency constraint.

Everything happens in pixel space ([0, 1]); classifiers normalise internally. Masking with the dataset
``mean`` fill is therefore the same as the authors' masking by zero in normalised space.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from actmatch_lite._validate import InputError

FILLS = ("zero", "mean", "blur")
BACKGROUNDS = ("zero", "mean", "gaussian", "uniform", "shuffle")


def make_fill(x: torch.Tensor, fill: str | float | torch.Tensor = "zero", *,
              mean: tuple[float, ...] | None = None, blur_sigma: float = 5.0) -> torch.Tensor:
    """The fill image for ``x (B, C, H, W)``, same shape.

    * ``"zero"``: black, 0.
    * ``"mean"``: the dataset mean colour ``mean`` (one value per channel; grey 0.5 when not given:
      :func:`actmatch_lite.explain` refuses that guess for a model without a mean colour).
    * ``"blur"``: ``x`` blurred with a Gaussian of standard deviation ``blur_sigma`` pixels (Fong & Vedaldi 2017).
    * a float: that constant; a tensor: used as is (broadcast to ``x``).
    """
    if isinstance(fill, torch.Tensor):
        return fill.to(x).expand_as(x)
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        return torch.full_like(x, float(fill))
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "mean":
        values = mean if mean is not None else (0.5,) * x.shape[1]
        if len(values) != x.shape[1]:
            raise InputError(f"mean has {len(values)} values but the images have {x.shape[1]} channels; give one "
                             "pixel-space value per channel (ExplainConfig(mean=...))")
        return torch.as_tensor(values, dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand_as(x)
    if fill == "blur":
        k = 2 * int(round(3 * blur_sigma)) + 1
        k = min(k, 2 * (min(x.shape[-2:]) // 2) - 1)
        return gaussian_blur(x, [k, k], [blur_sigma, blur_sigma])
    raise ValueError(f"unknown fill {fill!r}; use one of {FILLS}, a float, or a tensor")


def dilate(m: torch.Tensor, margin: int) -> torch.Tensor:
    """``m (B, 1, H, W)`` bool grown by ``margin`` pixels (a ``(2·margin+1)²`` square max filter)."""
    if margin <= 0:
        return m
    return F.max_pool2d(m.float(), 2 * margin + 1, stride=1, padding=margin) > 0


def apply_mask(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Keep the mask: ``e = m ⊙ x + (1 - m) ⊙ fill``. ``x (B, C, H, W)``, ``m (B, 1, H, W)``."""
    return m * x + (1 - m) * fill


def remove_mask(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Remove the mask (the complement): ``x_comp = (1 - m) ⊙ x + m ⊙ fill``."""
    return (1 - m) * x + m * fill


def random_backgrounds(x: torch.Tensor, kinds: tuple[str, ...] = ("mean", "gaussian", "uniform"), *,
                       mean: tuple[float, ...] | None = None, generator: torch.Generator | None = None,
                       noise_std: float = 0.25) -> torch.Tensor:
    """Random backgrounds ``r (K, B, C, H, W)`` for ``x (B, C, H, W)``, one per entry of ``kinds``.

    Pixel-space versions of the authors' {zeros, N(0, 1), U(-1, 1)} in normalised space:

    * ``"zero"`` / ``"mean"``: constant black / dataset mean colour;
    * ``"gaussian"``: ``clamp(mean + noise_std · N(0, 1), 0, 1)`` per pixel and channel;
    * ``"uniform"``: ``U(0, 1)`` per pixel and channel;
    * ``"shuffle"``: another image of the batch (``x`` rolled by a random non-zero offset; ``x`` itself when B = 1).

    ``generator`` must live on the CPU; draws are moved to ``x``'s device, so CPU and GPU give the same numbers.
    """
    mean_img = make_fill(x, "mean", mean=mean)
    out = []
    for kind in kinds:
        if kind == "zero":
            out.append(torch.zeros_like(x))
        elif kind == "mean":
            out.append(mean_img)
        elif kind == "gaussian":
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            out.append((mean_img + noise_std * z).clamp(0, 1))
        elif kind == "uniform":
            out.append(torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device))
        elif kind == "shuffle":
            b = x.shape[0]
            shift = int(torch.randint(1, b, (1,), generator=generator)) if b > 1 else 0
            out.append(x.roll(shift, dims=0))
        else:
            raise ValueError(f"unknown background {kind!r}; use any of {BACKGROUNDS}")
    return torch.stack(out)
