"""Input checks that turn bad input into one clear sentence instead of a traceback from inside torch."""
from __future__ import annotations

import numbers
import warnings

import torch
from torch import nn

from actmatch_lite.spec import LoadedModel

MASK_MIN_SIZE = (8, 8)   # default_spec keeps the mask network's bottleneck >= 4x4 with one stride-2 level
LARGE_SIDE = 4           # a side above 4x the training size warns (cost per step grows with the pixels)
SEED_LIMIT = 2 ** 62     # |seed| below it: image i uses seed + i, and torch.Generator takes 64-bit seeds


class InputError(ValueError):
    """Bad input given to an actmatch_lite function; the message names the problem and the fix."""


def check_images(x, *, channels: int | None = None, min_size: tuple[int, int] | None = None,
                 input_size: tuple[int, int] | None = None, dtype: torch.dtype | None = None,
                 model_name: str = "the classifier", name: str = "x") -> torch.Tensor:
    """Check an image batch ``x (B, C, H, W)``: float, finite, values in [0, 1]. Returns ``x`` cast to ``dtype``
    when given (float64 from ``torch.as_tensor(ndarray)``, float16 or bfloat16 become the classifier's float32),
    else unchanged.

    ``channels``, ``min_size`` and ``input_size`` (H, W) describe the classifier (``LoadedModel``), when known.
    ``min_size == input_size`` means a fixed-size head (``fmnist-cnn``): exactly that size is needed. A side more
    than ``LARGE_SIDE`` times ``input_size`` warns: the model never resizes, and each step costs the pixels.
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
    _check_size(x, min_size, input_size, model_name, name)
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or inf values; clean the input first.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} has values in [{_shown(lo, 0.0)}, {_shown(hi, 1.0)}] but pixels in [0, 1] are "
                         "expected (un-normalised; the classifier applies its own normalisation). "
                         "Divide 8-bit images by 255 and undo any mean/std normalisation.")
    return x if dtype is None else x.to(dtype)


def _check_size(x: torch.Tensor, min_size, input_size, model_name: str, name: str) -> None:
    """Refuse a size the classifier cannot take; warn for one far above the size it was trained at."""
    h, w = x.shape[-2:]
    if input_size is not None and min_size is not None and tuple(min_size) == tuple(input_size) \
            and (h, w) != tuple(input_size):
        raise InputError(f"{name} is {h}x{w} but {model_name} takes exactly {input_size[0]}x{input_size[1]} (a "
                         "fixed-size head); resize the image first, e.g. with LoadedModel.preprocess(image).")
    if min_size is not None and (h < min_size[0] or w < min_size[1]):
        raise InputError(f"{name} is {h}x{w} but {model_name} needs at least {min_size[0]}x{min_size[1]}; "
                         "resize the image first.")
    if input_size is not None and (h > LARGE_SIDE * input_size[0] or w > LARGE_SIDE * input_size[1]):
        factor = h * w / (input_size[0] * input_size[1])
        warnings.warn(f"{name} is {h}x{w}, {factor:.3g}x the pixels {model_name} was trained at "
                      f"({input_size[0]}x{input_size[1]}), and every step costs about that much more: resize "
                      "the image first (e.g. torch.nn.functional.interpolate) unless that detail matters.",
                      UserWarning, stacklevel=5)   # points at the caller of explain


def _shown(v: float, bound: float) -> str:
    """``v`` with the fewest digits (at least 3) that keep it on its own side of ``bound``: 1.0001, not 1."""
    for digits in range(3, 18):
        text = f"{v:.{digits}g}"
        if (float(text) > bound) == (v > bound) and (float(text) < bound) == (v < bound):
            return text
    return repr(v)


def check_mask_net_size(x: torch.Tensor, name: str = "x") -> None:
    """The mask network (``masknet.default_spec``) needs images of at least ``MASK_MIN_SIZE``."""
    h, w = x.shape[-2:]
    if h < MASK_MIN_SIZE[0] or w < MASK_MIN_SIZE[1]:
        raise InputError(f"{name} is {h}x{w} but the mask network needs at least {MASK_MIN_SIZE[0]}x"
                         f"{MASK_MIN_SIZE[1]} (its bottleneck keeps at least 4x4); resize the image first.")


def classifier_dtype(model: nn.Module) -> torch.dtype:
    """The float dtype of the classifier's first floating parameter or buffer (float32 when it has none)."""
    tensors = [*model.parameters(), *model.buffers()]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def check_seed(seed) -> int:
    """``seed`` as an int: any integer (Python, NumPy) with ``|seed| < SEED_LIMIT``; bools and floats are refused."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and abs(int(seed)) < SEED_LIMIT:
        return int(seed)
    raise InputError(f"seed must be an int with |seed| < 2**62 (image i uses seed + i), got {seed!r}; "
                     "pass e.g. seed=0.")


def check_target(target, batch: int, class_names: tuple[str, ...] | None = None,
                 model_name: str = "the classifier", name: str = "target") -> torch.Tensor | None:
    """The classes to explain as a ``(batch,)`` long tensor, or None (``argmax f(x)``).

    Accepted: None; one class for every image (an int, a 0-dim integer tensor, or a class name when
    ``class_names`` is known); one per image (a list, tuple, ``(batch,)`` integer tensor or NumPy array of ints
    or names). The range ``[0, K)`` is checked once the logits are known (:func:`check_target_range`).
    """
    if target is None:
        return None
    if type(target).__module__ == "numpy":   # np.int64(2), np.array([0, 1])
        target = torch.as_tensor(target)
    what = (f"{name} must be None, a class index, a class name or one per image ({batch} of them)"
            if name == "target" else f"{name} must be a list of class indices or class names")
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
            raise InputError(f"{what}, got a tensor of dtype {target.dtype}; use an integer tensor.")
        if target.dim() > 1:
            raise InputError(f"{what}, got a tensor of shape {tuple(target.shape)}.")
        values = target.reshape(-1).tolist()
        single = target.dim() == 0
    elif isinstance(target, (list, tuple)):
        values, single = list(target), False
    else:
        values, single = [target], True
    if not single and len(values) != batch:
        raise InputError(f"{what}; got {len(values)} targets for {batch} images.")
    y = [_class_index(v, class_names, model_name, what, target, name) for v in values]
    return torch.tensor(y * batch if single else y, dtype=torch.long)


def _class_index(v, class_names, model_name: str, what: str, target, name: str) -> int:
    """One class: an integer (Python, NumPy) or a class name."""
    if isinstance(v, str):
        if class_names is None:
            raise InputError(f"{name}={v!r} is a class name, but a plain nn.Module has no class_names; pass the "
                             "class index, or a LoadedModel (whose class_names name the classes).")
        if v not in class_names:
            raise InputError(f"no class named {v!r}; {model_name}'s classes are {tuple(class_names)}.")
        return class_names.index(v)
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    raise InputError(f"{what}, got {target!r}.")


def check_target_range(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``y`` unchanged when every class lies in ``[0, num_classes)``."""
    if (y < 0).any() or (y >= num_classes).any():
        raise InputError(f"target classes must lie in [0, {num_classes}), got {y.tolist()}")
    return y


def check_logits(out, batch: int | None = None) -> torch.Tensor:
    """The classifier's output ``out``, which must be logits ``(B, K)`` (``B = batch`` when given); a tuple or
    dict output names the fix."""
    fix = ""
    if isinstance(out, (tuple, list)) and out:
        fix = "model(x)[0]"
    elif isinstance(out, dict) and out:
        fix = f"model(x)[{next(iter(out))!r}]"
    if not isinstance(out, torch.Tensor):
        pick = f" (forward: return {fix})" if fix else ""
        raise InputError(f"the classifier returned a {type(out).__name__} but logits (B, K) are needed; wrap it in "
                         f"a small module whose forward returns the logits{pick} and explain that.")
    if out.dim() != 2 or batch not in (None, out.shape[0]):
        raise InputError(f"the classifier returned shape {tuple(out.shape)} but logits (B, K) are needed, one row "
                         "per image; wrap it in a small module whose forward returns them.")
    return out


def check_explain_inputs(clf, x, *, target=None, seed=0) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The checks shared by ``explain``, ``AmortizedExplainer.explain`` and ``explain_instances``.

    ``clf``: a ``LoadedModel`` (its channels, sizes and class names are checked) or an ``nn.Module``. Returns
    ``x`` cast to the classifier's float dtype (:func:`check_images`), the targets (:func:`check_target`) and
    the seed (:func:`check_seed`).
    """
    lm = clf if isinstance(clf, LoadedModel) else None
    model = lm.clf if lm is not None else clf
    x = check_images(x, channels=lm.channels if lm else None, min_size=lm.min_size if lm else None,
                     input_size=lm.input_size if lm else None, dtype=classifier_dtype(model),
                     model_name=lm.name if lm else "the classifier")
    check_mask_net_size(x)
    y = check_target(target, len(x), lm.class_names if lm else None, lm.name if lm else "the classifier")
    return x, y, check_seed(seed)


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
