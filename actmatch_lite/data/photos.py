"""Photos bundled with scikit-image (permissive licences), image conversion, and multi-instance photo canvases."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

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


def to_image_tensor(image, channels: int | None = None) -> torch.Tensor:
    """Any image -> ``(1, C, H, W)`` float32 in [0, 1].

    Accepts a PIL image, an ndarray ``(H, W)`` / ``(H, W, C)`` (uint8, bool or float in [0, 1]), or a tensor
    ``(C, H, W)`` / ``(1, C, H, W)`` already in [0, 1]. ``channels`` (1 or 3) converts grey <-> RGB.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().float()
        t = t.unsqueeze(0) if t.dim() == 3 else t
        if t.dim() != 4:
            raise ValueError(f"a tensor image must be (C, H, W) or (B, C, H, W), got shape {tuple(t.shape)}")
    else:
        a = np.asarray(image)  # PIL images convert through the array interface
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        a = a.astype(np.float32)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3:
            raise ValueError(f"an array image must be (H, W) or (H, W, C), got shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a[:, :, :3])).permute(2, 0, 1).unsqueeze(0)
    if channels == 3 and t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif channels == 1 and t.shape[1] == 3:  # ITU-R 601 luma, as PIL's "L" mode
        t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return t.clamp(0, 1).contiguous()


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
    from skimage import data as skdata

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
                              gap: int = 4, background_gain: float = 0.6) -> MultiInstancePhoto:
    """Several copies of one photo crop side by side on a background, like the paper's group of otters.

    ``box`` (top, left, bottom, right) is the crop in the original photo (default: Chelsea's cat for
    ``"chelsea"``, the whole photo otherwise). Each copy is scaled to fit a ``size / n_instances`` wide
    column with ``gap`` px between copies, and centred vertically. ``background`` is a texture name (dimmed
    by ``background_gain`` so the instances stand out) or a constant grey level. Each instance mask is its
    pasted rectangle.
    """
    if n_instances < 1:
        raise ValueError(f"n_instances must be >= 1, got {n_instances}")
    src = to_image_tensor(_raw(photo), channels=3)
    top, left, bottom, right = box or (CHELSEA_CAT_BOX if photo == "chelsea" else (0, 0, *src.shape[-2:]))
    crop = src[..., top:bottom, left:right]
    if isinstance(background, str):
        x = load_texture(background, size) * background_gain
    else:
        x = torch.full((1, 3, size, size), float(background))
    col_w = (size - gap * (n_instances + 1)) // n_instances
    scale = min(col_w / crop.shape[-1], (size - 2 * gap) / crop.shape[-2])
    ih, iw = max(1, int(crop.shape[-2] * scale)), max(1, int(crop.shape[-1] * scale))
    inst = F.interpolate(crop, size=(ih, iw), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    boxes, masks = [], torch.zeros(n_instances, 1, size, size, dtype=torch.bool)
    t = (size - ih) // 2
    for k in range(n_instances):
        l = gap + k * (col_w + gap) + (col_w - iw) // 2
        x[..., t:t + ih, l:l + iw] = inst
        masks[k, :, t:t + ih, l:l + iw] = True
        boxes.append((t, l, t + ih, l + iw))
    return MultiInstancePhoto(x, torch.tensor(boxes, dtype=torch.int64), masks)
