"""Generated shapes on clutter, with exact ground-truth masks.

Each image holds ONE bright, saturated target shape from :data:`SHAPE_CLASSES` on a cluttered background:
a dimmed CC0 texture crop (scikit-image's grass, gravel, brick), thin strokes, soft muted blobs and pixel
noise. The blobs are soft-edged and grey-ish, a family that cannot be mistaken for a class, so the class
evidence lives inside the target and its mask is the ground truth an explanation should find.

The renderer is shared with :mod:`actmatch_lite.data.canvases` (several targets per image).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from skimage import data as skdata
from skimage.transform import resize

SHAPE_CLASSES = ("disk", "square", "triangle", "star", "plus", "ring")
TEXTURES = ("grass", "gravel", "brick")
TEXTURE_SIZE = 512

RADIUS_FRAC = (8 / 64, 18 / 64)     # target radius as a fraction of the image side (8-18 px at 64)
TARGET_SAT = (0.75, 1.0)            # target colour: saturated and bright, any hue
TARGET_VAL = (0.85, 1.0)
TEXTURE_GAIN = (0.15, 0.45)         # background texture is dimmed to about this mean brightness
TEXTURE_SAT = (0.0, 0.4)            # and tinted with a muted colour
BLOB_COUNT = (1, 4)                 # soft distractor blobs per 64x64 image (inclusive range, uniform)
BLOB_SIZE_FRAC = (0.05, 0.2)        # blob standard deviations as a fraction of the image side
BLOB_SAT = (0.0, 0.3)               # muted colours and soft edges, so blobs never look like a target
BLOB_VAL = (0.25, 0.6)
BLOB_ALPHA = (0.3, 0.7)
STROKE_COUNT = (0, 3)               # thin strokes per 64x64 image (inclusive range, uniform)
STROKE_HALF_WIDTH = 0.6             # px: strokes about one pixel wide
STROKE_SAT = (0.0, 0.35)
STROKE_VAL = (0.3, 0.65)
NOISE_STD = 0.03
CHUNK = 512                         # images rendered at once (bounds memory)

# Shape geometry in units of the radius (a shape fits in the unit disc).
SQUARE_HALF = 2 ** -0.5  # inscribed: every shape fits in the unit disc, which canvases rely on
TRIANGLE_APOTHEM = 0.5
STAR_POINTS, STAR_INNER = 5, 0.45
PLUS_ARM_HALF, PLUS_LENGTH = 0.3, 0.95
RING_INNER = 0.55


@dataclass(frozen=True)
class ShapesData:
    """A generated dataset.

    ``x (n, 3, H, W)`` float32 in [0, 1]; ``y (n,)`` int64 class index; ``masks (n, 1, H, W)`` bool, exactly the
    pixels painted with the target colour; ``class_names`` names the classes.
    """

    x: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor
    class_names: tuple[str, ...] = SHAPE_CLASSES

    def __len__(self) -> int:
        return len(self.y)


@lru_cache(maxsize=1)
def texture_bank() -> np.ndarray:
    """scikit-image's CC0 textures ``(len(TEXTURES), 512, 512)`` float32 in [0, 1], loaded once."""
    out = []
    for name in TEXTURES:
        t = getattr(skdata, name)().astype(np.float32) / 255.0
        if t.shape != (TEXTURE_SIZE, TEXTURE_SIZE):
            t = resize(t, (TEXTURE_SIZE, TEXTURE_SIZE), anti_aliasing=True).astype(np.float32)
        out.append(t)
    return np.stack(out)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB: ``h, s, v (n,)`` in [0, 1] -> ``(n, 3)``."""
    k = (np.array([5.0, 3.0, 1.0]) + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def shape_masks(cls: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, theta: np.ndarray,
                size: int) -> np.ndarray:
    """Binary masks ``(n, size, size)`` of shapes with class ``cls``, centre ``(cx, cy)`` px, radius ``r`` px, angle ``theta``.

    Pixels are sampled at their centres, so the mask is exactly the set of pixels the renderer paints.
    """
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (c * dx + s * dy) / r[:, None, None]
    v = (-s * dx + c * dy) / r[:, None, None]
    rho = np.hypot(u, v)
    out = np.zeros(u.shape, dtype=bool)
    for k, name in enumerate(SHAPE_CLASSES):
        sel = cls == k
        if sel.any():
            out[sel] = _unit_shape(name, u[sel], v[sel], rho[sel])
    return out


def _unit_shape(name: str, u: np.ndarray, v: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Inside-test of one shape in unit-radius local coordinates ``(u, v)``."""
    if name == "disk":
        return rho <= 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF
    if name == "triangle":  # three half-planes whose normals are 120 degrees apart
        normals = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.all([u * np.cos(a) + v * np.sin(a) <= TRIANGLE_APOTHEM for a in normals], axis=0)
    if name == "star":  # fold the angle into one half-sector; inside means on the origin side of its edge
        sector = 2 * np.pi / STAR_POINTS
        phi = np.abs((np.arctan2(v, u) + np.pi / 2) % sector - sector / 2)
        px, py = rho * np.cos(phi), rho * np.sin(phi)
        qx, qy = STAR_INNER * np.cos(sector / 2), STAR_INNER * np.sin(sector / 2)
        # sign of cross((q - tip), (p - tip)) with tip at (1, 0)
        return (qx - 1.0) * py - qy * (px - 1.0) >= 0.0
    if name == "plus":
        au, av = np.abs(u), np.abs(v)
        return ((au <= PLUS_ARM_HALF) & (av <= PLUS_LENGTH)) | ((av <= PLUS_ARM_HALF) & (au <= PLUS_LENGTH))
    if name == "ring":
        return (rho <= 1.0) & (rho >= RING_INNER)
    raise ValueError(f"unknown shape {name!r}; use one of {SHAPE_CLASSES}")


def _textures(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Random crops ``(n, 3, size, size)`` of the texture bank, transposed half the time, tinted and dimmed."""
    bank = texture_bank()
    idx = rng.integers(0, len(bank), n)
    oy, ox = rng.integers(0, TEXTURE_SIZE - size, (2, n))
    ar = np.arange(size)
    tex = bank[idx[:, None, None], oy[:, None, None] + ar[None, :, None], ox[:, None, None] + ar[None, None, :]]
    flip = rng.random(n) < 0.5  # transposing crops doubles texture variety (brick rows run both ways)
    tex[flip] = tex[flip].transpose(0, 2, 1)
    # textures average about 0.5, so scaling by 2 * gain puts the mean brightness near the gain
    tint = hsv_to_rgb(rng.random(n), rng.uniform(*TEXTURE_SAT, n), 2 * rng.uniform(*TEXTURE_GAIN, n))
    return (tex[:, None] * tint[:, :, None, None]).astype(np.float32)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Alpha-blend ``colour (n, 3)`` over ``img (n, 3, H, W)`` with per-pixel ``alpha (n, H, W)``."""
    return img * (1 - alpha[:, None]) + colour[:, :, None, None].astype(np.float32) * alpha[:, None]


def clutter(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Cluttered backgrounds ``(n, 3, size, size)`` float32 in [0, 1]: texture, soft blobs, thin strokes.

    Blob and stroke counts are drawn uniformly from :data:`BLOB_COUNT` / :data:`STROKE_COUNT`, scaled by
    the image area relative to 64x64. Every slot is drawn for every image (vectorised) and shown where the
    image's count exceeds the slot index.
    """
    img = _textures(rng, n, size)
    area = (size / 64) ** 2
    n_blobs = rng.integers(round(BLOB_COUNT[0] * area), round(BLOB_COUNT[1] * area) + 1, n)
    n_strokes = rng.integers(round(STROKE_COUNT[0] * area), round(STROKE_COUNT[1] * area) + 1, n)
    grid = np.arange(size, dtype=np.float32) + 0.5
    for j in range(n_blobs.max(initial=0)):
        cx, cy = rng.uniform(0, size, (2, n))
        sx, sy = rng.uniform(*BLOB_SIZE_FRAC, (2, n)) * size
        a = rng.uniform(0, np.pi, n)
        dx, dy = grid[None, None, :] - cx[:, None, None], grid[None, :, None] - cy[:, None, None]
        ca, sa = np.cos(a)[:, None, None], np.sin(a)[:, None, None]
        q = ((ca * dx + sa * dy) / sx[:, None, None]) ** 2 + ((-sa * dx + ca * dy) / sy[:, None, None]) ** 2
        strength = rng.uniform(*BLOB_ALPHA, n) * (j < n_blobs)
        colour = hsv_to_rgb(rng.random(n), rng.uniform(*BLOB_SAT, n), rng.uniform(*BLOB_VAL, n))
        img = _blend(img, (np.exp(-0.5 * q) * strength[:, None, None]).astype(np.float32), colour)
    for j in range(n_strokes.max(initial=0)):
        p0, p1 = rng.uniform(0, size, (2, n, 2))
        d = p1 - p0
        dx, dy = grid[None, None, :] - p0[:, 0, None, None], grid[None, :, None] - p0[:, 1, None, None]
        t = np.clip((dx * d[:, 0, None, None] + dy * d[:, 1, None, None])
                    / (d ** 2).sum(1).clip(1e-6)[:, None, None], 0, 1)  # projection onto the segment
        dist = np.hypot(dx - t * d[:, 0, None, None], dy - t * d[:, 1, None, None])
        line = ((dist <= STROKE_HALF_WIDTH) & (j < n_strokes)[:, None, None]).astype(np.float32)
        colour = hsv_to_rgb(rng.random(n), rng.uniform(*STROKE_SAT, n), rng.uniform(*STROKE_VAL, n))
        img = _blend(img, line, colour)
    return img.astype(np.float32)


def target_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bright saturated colours ``(n, 3)`` for targets."""
    return hsv_to_rgb(rng.random(n), rng.uniform(*TARGET_SAT, n), rng.uniform(*TARGET_VAL, n)).astype(np.float32)


def add_noise(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Pixel noise on everything, clipped back to [0, 1]."""
    return np.clip(img + rng.normal(0.0, NOISE_STD, img.shape).astype(np.float32), 0.0, 1.0)


def make_shapes(n: int, seed: int, size: int = 64) -> ShapesData:
    """``n`` images ``(3, size, size)`` each with one target shape; classes balanced (``n // 6`` or one more each).

    Same ``seed`` -> identical arrays. The target is painted last and opaque, and noise is added only
    outside it, so ``masks`` is exactly the set of target-coloured pixels.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES))
    r = rng.uniform(*RADIUS_FRAC, n) * size
    cx, cy = (rng.uniform(0, 1, (2, n)) * (size - 2 * r) + r).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, n)
    colour = target_colours(rng, n)
    xs, ms = [], []
    for lo in range(0, n, CHUNK):
        sl = slice(lo, min(n, lo + CHUNK))
        m = shape_masks(y[sl], cx[sl], cy[sl], r[sl].astype(np.float32), theta[sl], size)
        img = add_noise(rng, clutter(rng, m.shape[0], size))
        img = np.where(m[:, None], colour[sl, :, None, None], img)
        xs.append(img)
        ms.append(m[:, None])
    return ShapesData(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(y.astype(np.int64)),
                      torch.from_numpy(np.concatenate(ms)))
