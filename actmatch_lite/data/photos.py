"""Photos bundled with scikit-image (permissive licences), image conversion, and multi-instance photo canvases."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata

from actmatch_lite._validate import InputError, check_images

# name -> (what it shows, source, licence). All ship inside scikit-image (skimage.data); nothing is downloaded.
PHOTO_CREDITS: dict[str, tuple[str, str, str]] = {
    "chelsea": ("Chelsea the cat", "skimage.data.chelsea, photo by Stefan van der Walt", "CC0"),
    "coffee": ("a cup of coffee", "skimage.data.coffee, photo by Rachel Michetti (Pikolo Espresso Bar)", "CC0"),
    "rocket": ("DSCOVR launch on Falcon 9", "skimage.data.rocket, photo by SpaceX", "public domain"),
    "astronaut": ("astronaut Eileen Collins", "skimage.data.astronaut, NASA Great Images", "public domain"),
    "horse": ("a horse silhouette", "skimage.data.horse, openclipart, Andreas Preuss (marauder)", "CC0"),
    "camera": ("a photographer with a camera", "skimage.data.camera, photo by Lav Varshney", "CC0"),
    "grass": ("grass texture", "skimage.data.grass, DeviantArt linolafett 'Grass 01'", "CC0"),
    "gravel": ("gravel texture", "skimage.data.gravel, CC0Textures Gravel04", "CC0"),
    "brick": ("brick wall texture", "skimage.data.brick, CC0Textures Bricks25", "CC0"),
}
PHOTOS = tuple(PHOTO_CREDITS)
TEXTURE_NAMES = ("grass", "gravel", "brick")
DEFAULT_SIZE = 224
# Chelsea's face, ears to chin, in the (300, 451) original, (top, left, bottom, right): the "instance" crop.
CHELSEA_CAT_BOX = (10, 40, 300, 420)


# PIL modes read as stored (numpy gives each its dtype and range); others name their conversion
PIL_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "F")
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "F")   # 16-bit and float grey: PIL converts them lossily
FLATTEN_HINT = ("flatten it onto a background first, e.g. Image.alpha_composite(Image.new('RGBA', im.size, "
                "'white'), im.convert('RGBA')).convert('RGB')")


def to_image_tensor(image, channels: int | None = None) -> torch.Tensor:
    """Any image -> ``(1, C, H, W)`` float32 in [0, 1], every value scaled by its type's range, never clamped.

    Accepts a PIL image, an ndarray ``(H, W)`` / ``(H, W, C)`` or a tensor ``(C, H, W)`` / ``(1, C, H, W)``.
    Unsigned integers are divided by their maximum (uint8 / 255, uint16 / 65535, ...), bool is 0 / 1, floats
    must already lie in [0, 1]. Refused with an :class:`InputError` that names the fix: floats outside [0, 1]
    (0..255 floats: divide by 255), signed integers (no defined white level: cast 0..255 data to uint8), PIL
    modes outside :data:`PIL_MODES` (CMYK, YCbCr, LAB, HSV, 32-bit integer ``I``). Alpha (RGBA, LA, ``(H, W, 4)``
    or ``(H, W, 2)`` arrays, a palette's or PNG's transparency) is dropped when every pixel is opaque; an image
    with transparent pixels is refused, since the colour under them is undefined. ``channels`` (1 or 3)
    converts grey <-> RGB (ITU-R 601 luma, as PIL's ``L``).
    """
    if isinstance(image, torch.Tensor):
        t = image.detach()
        t = t.unsqueeze(0) if t.dim() == 3 else t
        if t.dim() != 4:
            raise InputError(f"a tensor image must be (C, H, W) or (B, C, H, W), got shape {tuple(t.shape)}")
        t = _unit_tensor(t)
    else:
        a = np.asarray(readable_pil(image) if hasattr(image, "getbands") else image)
        a = a[:, :, None] if a.ndim == 2 else a
        if a.ndim != 3 or a.shape[2] > 4:
            hint = "; channels-first? use a.transpose(1, 2, 0)" if a.ndim == 3 and a.shape[0] <= 4 else ""
            raise InputError(f"an array image must be (H, W) or (H, W, C) with C <= 4, got shape {a.shape}{hint}")
        a = _unit_array(a)
        a = _opaque(a) if a.shape[2] in (2, 4) else a
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0)
    check_images(t, name="image")
    if channels == 3 and t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif channels == 1 and t.shape[1] == 3:  # ITU-R 601 luma, as PIL's "L" mode
        t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return t.clamp(0, 1).contiguous()   # only the luma's rounding can step past 1: the range was checked


def readable_pil(im):
    """A PIL image that numpy reads right, without alpha (rules in :func:`to_image_tensor`).

    Modes outside :data:`PIL_MODES` are refused; palettes become RGB; transparency must be opaque everywhere.
    """
    if im.mode == "I":
        raise InputError("PIL image mode 'I' (32-bit integers) has no defined white level; save it as 16-bit "
                         "(I;16) or as floats in [0, 1] (F).")
    if im.mode not in PIL_MODES:
        raise InputError(f"PIL image mode {im.mode!r} is not read as an image; convert it to RGB first, e.g. "
                         "image.convert('RGB') (a colour-managed tool when exact colour matters).")
    if not im.has_transparency_data:
        return im.convert("RGB") if im.mode == "P" else im
    if im.mode in WIDE_MODES:
        raise InputError(f"a {im.mode} image with transparency is not read; {FLATTEN_HINT}.")
    rgba = im.convert("RGBA")
    _opaque(_unit_array(np.asarray(rgba)))
    return im.convert("L") if im.mode in ("1", "L", "LA") else rgba.convert("RGB")


def _opaque(a: np.ndarray) -> np.ndarray:
    """``a (H, W, 2 | 4)`` in [0, 1] without its last (alpha) channel, which must be 1 (opaque) everywhere."""
    if not (a[:, :, -1] == 1).all():
        raise InputError("the image has transparent pixels (alpha below its maximum), whose colour is undefined; "
                         f"{FLATTEN_HINT}.")
    return a[:, :, :-1]


def _refuse_dtype(dtype) -> InputError:
    """Signed integers (an int64 array from a list of 0..255 values is common) and the rest: no scale to guess."""
    return InputError(f"an image of dtype {dtype} has no defined white level; cast 0..255 data to uint8 "
                      "(a.astype(np.uint8) or x.to(torch.uint8)), or scale it to floats in [0, 1].")


def _unit_array(a: np.ndarray) -> np.ndarray:
    """float32 pixels: unsigned integers / their maximum, bool 0 / 1, floats as they are (checked later)."""
    if a.dtype == np.bool_ or a.dtype.kind == "f":
        return a.astype(np.float32)
    if a.dtype.kind == "u":   # float32 is exact up to 16 bits; wider integers divide in float64
        return (a.astype(np.float32 if a.itemsize <= 2 else np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    raise _refuse_dtype(a.dtype)


def _unit_tensor(t: torch.Tensor) -> torch.Tensor:
    """``_unit_array`` for tensors, on their device."""
    if t.dtype == torch.bool or t.is_floating_point():
        return t.float()
    if not t.is_complex() and not t.dtype.is_signed:
        return (t.double() / torch.iinfo(t.dtype).max).float() if t.element_size() > 2 else \
            t.float() / torch.iinfo(t.dtype).max
    raise _refuse_dtype(t.dtype)


def resize_center_crop(x: torch.Tensor, size: int, resize_to: int | None = None) -> torch.Tensor:
    """Resize ``x (B, C, H, W)`` so its short side is ``resize_to`` (default ``size``), then center-crop ``size``."""
    short = resize_to or size
    h, w = x.shape[-2:]
    scale = short / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top:top + size, left:left + size].clamp(0, 1)


def _raw(name: str) -> np.ndarray:
    if name not in PHOTO_CREDITS:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTOS}")
    return getattr(skdata, name)()


def load_photo(name: str, size: int | None = DEFAULT_SIZE) -> torch.Tensor:
    """A bundled photo as ``(1, 3, size, size)`` float RGB in [0, 1] (short side resized, center-cropped).

    ``size=None`` keeps the original resolution. Grey photos are repeated to three channels.
    """
    x = to_image_tensor(_raw(name), channels=3)
    return x if size is None else resize_center_crop(x, size)


def load_texture(name: str, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """A CC0 texture (grass, gravel, brick) as a ``(1, 3, size, size)`` background."""
    if name not in TEXTURE_NAMES:
        raise ValueError(f"unknown texture {name!r}; choose one of {TEXTURE_NAMES}")
    return load_photo(name, size)


@dataclass(frozen=True)
class MultiInstancePhoto:
    """``x (1, 3, H, W)``; ``boxes (K, 4)`` int64 (top, left, bottom, right); ``instance_masks (K, 1, H, W)`` bool."""

    x: torch.Tensor
    boxes: torch.Tensor
    instance_masks: torch.Tensor


def make_multi_instance_photo(photo: str = "chelsea", n_instances: int = 2, size: int = DEFAULT_SIZE,
                              background: str | float = "grass", box: tuple[int, int, int, int] | None = None,
                              gap: int = 4, background_gain: float = 0.6, layout: str = "row",
                              width: float = 0.575) -> MultiInstancePhoto:
    """Several copies of one photo crop on a background, like the paper's group of otters.

    ``box`` (top, left, bottom, right) is the crop in the original photo (default: Chelsea's cat for
    ``"chelsea"``, the whole photo otherwise). ``layout="row"``: each copy is scaled to fit a ``size / n_instances``
    wide column with ``gap`` px between copies, centred vertically. ``layout="diagonal"``: each copy is
    ``width * size`` px wide, spread evenly from the top-left corner to the bottom-right one, ``gap`` px from the
    border; copies overlap in rows or columns but not both (an error says so when they would touch), and stand
    farther apart than in a row at the same size. ``background`` is a texture name (dimmed by ``background_gain``
    so the instances stand out) or a constant grey level. Each instance mask is its pasted rectangle.
    """
    if n_instances < 1 or layout not in ("row", "diagonal"):
        raise ValueError(f"need n_instances >= 1 and layout 'row' or 'diagonal', got {n_instances}, {layout!r}")
    src = to_image_tensor(_raw(photo), channels=3)
    top, left, bottom, right = box or (CHELSEA_CAT_BOX if photo == "chelsea" else (0, 0, *src.shape[-2:]))
    crop = src[..., top:bottom, left:right]
    if isinstance(background, str):
        x = load_texture(background, size) * background_gain
    else:
        x = torch.full((1, 3, size, size), float(background))
    if layout == "row":
        col_w = (size - gap * (n_instances + 1)) // n_instances
        scale = min(col_w / crop.shape[-1], (size - 2 * gap) / crop.shape[-2])
    else:
        scale = min(width * size, size - 2 * gap) / crop.shape[-1]
    ih, iw = max(1, int(crop.shape[-2] * scale)), max(1, int(crop.shape[-1] * scale))
    if ih > size - 2 * gap:
        raise ValueError(f"a copy {ih} px tall does not fit {size} px with gap {gap}: lower width")
    inst = F.interpolate(crop, size=(ih, iw), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    if layout == "row":
        corners = [((size - ih) // 2, gap + k * (col_w + gap) + (col_w - iw) // 2) for k in range(n_instances)]
    else:
        steps = max(n_instances - 1, 1)
        dy, dx = (size - 2 * gap - ih) / steps, (size - 2 * gap - iw) / steps
        if n_instances > 1 and dy < ih and dx < iw:
            raise ValueError(f"{n_instances} copies {iw} px wide touch on a {size} px diagonal: lower width")
        corners = [(gap + round(k * dy), gap + round(k * dx)) for k in range(n_instances)]
    boxes, masks = [], torch.zeros(n_instances, 1, size, size, dtype=torch.bool)
    for k, (t, l) in enumerate(corners):
        x[..., t:t + ih, l:l + iw] = inst
        masks[k, :, t:t + ih, l:l + iw] = True
        boxes.append((t, l, t + ih, l + iw))
    return MultiInstancePhoto(x, torch.tensor(boxes, dtype=torch.int64), masks)


# copies per composite -> the range of their width (a fraction of the side) that keeps EfficientNet-Lite0's top-1
# on the cat with p >= 0.75 on every texture (checked at 192-256 px), and the copies apart on the diagonal
COMPOSITE_WIDTHS = {1: (0.7, 0.85), 2: (0.5, 0.575), 3: (0.36, 0.40)}


def make_photo_composites(n: int, seed: int = 0, size: int = DEFAULT_SIZE, photo: str = "chelsea",
                          n_instances: tuple[int, ...] = (1, 2, 3)) -> tuple[MultiInstancePhoto, ...]:
    """``n`` seeded composite photos: 1-3 copies of a real photo crop on a real texture, with exact instance masks.

    Each composite draws its number of copies from ``n_instances``, a texture, a copy width from
    :data:`COMPOSITE_WIDTHS`, a margin of 4-8 px, and the diagonal or the anti-diagonal (a mirrored layout);
    :func:`make_multi_instance_photo` with ``layout="diagonal"`` builds it. The masks are exactly the pasted pixels.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.choice(n_instances))
        lo, hi = COMPOSITE_WIDTHS[k]
        p = make_multi_instance_photo(photo, k, size=size, background=str(rng.choice(TEXTURE_NAMES)),
                                      gap=int(rng.integers(4, 9)), layout="diagonal", width=float(rng.uniform(lo, hi)))
        if rng.random() < 0.5:   # the anti-diagonal: mirror image, masks and boxes
            t, l, b, r = p.boxes.unbind(1)
            p = MultiInstancePhoto(p.x.flip(-1), torch.stack([t, size - r, b, size - l], 1), p.instance_masks.flip(-1))
        out.append(p)
    return tuple(out)
