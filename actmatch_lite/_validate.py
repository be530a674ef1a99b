"""Input checks that turn bad input into one clear sentence instead of a traceback from inside torch."""
from __future__ import annotations

import torch


class InputError(ValueError):
    """Bad input given to an actmatch_lite function; the message names the problem and the fix."""


def check_images(x, *, channels: int | None = None, min_size: tuple[int, int] | None = None,
                 name: str = "x") -> torch.Tensor:
    """Check an image batch ``x (B, C, H, W)``: float, finite, values in [0, 1]. Returns ``x`` unchanged.

    ``channels`` and ``min_size`` (H, W) are what the classifier accepts, when known.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}; "
                         "convert with torch.as_tensor(...) or use LoadedModel.preprocess(image).")
    if x.dim() == 3:
        raise InputError(f"{name} has shape {tuple(x.shape)} (3 dims) but a batch (B, C, H, W) is needed; "
                         f"add the batch dimension with {name}.unsqueeze(0).")
    if x.dim() != 4:
        raise InputError(f"{name} must have 4 dims (B, C, H, W), got shape {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (B = 0); pass at least one image.")
    if not x.is_floating_point():
        raise InputError(f"{name} has dtype {x.dtype} but a float tensor in [0, 1] is needed; "
                         f"use {name}.float() / 255 for 8-bit images.")
    if channels is not None and x.shape[1] != channels:
        hint = (" Channels-last input? Use x.permute(0, 3, 1, 2)." if x.shape[-1] == channels else
                " Repeat a grey image with x.expand(-1, 3, -1, -1)." if x.shape[1] == 1 and channels == 3 else "")
        raise InputError(f"{name} has {x.shape[1]} channels but the classifier expects {channels}.{hint}")
    if min_size is not None and (x.shape[-2] < min_size[0] or x.shape[-1] < min_size[1]):
        raise InputError(f"{name} is {x.shape[-2]}x{x.shape[-1]} but the classifier needs at least "
                         f"{min_size[0]}x{min_size[1]}; resize the image first.")
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf values; clean the input first.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} has values in [{lo:.3g}, {hi:.3g}] but pixels in [0, 1] are expected "
                         "(un-normalised; the classifier applies its own normalisation). "
                         "Divide 8-bit images by 255 and undo any mean/std normalisation.")
    return x


def check_mask(m, like: torch.Tensor, name: str = "m") -> torch.Tensor:
    """Check a mask ``m (B, 1, H, W)`` matching images ``like (B, C, H, W)``; bool masks are cast to float."""
    if not isinstance(m, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape (B, 1, H, W), got {type(m).__name__}.")
    if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] != like.shape[0] or m.shape[-2:] != like.shape[-2:]:
        raise InputError(f"{name} must have shape {(like.shape[0], 1, *like.shape[-2:])} to match the images, "
                         f"got {tuple(m.shape)}.")
    m = m.to(like.dtype) if m.dtype == torch.bool else m
    if not torch.isfinite(m).all():
        raise InputError(f"{name} contains NaN or inf values.")
    return m
