"""Data: generator determinism and exact masks, canvases, Fashion-MNIST lookup, photos."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from actmatch_lite._validate import InputError
from actmatch_lite.data import (PHOTO_CREDITS, SHAPE_CLASSES, fmnist, load_photo, make_canvases,
                                make_multi_instance_photo, make_photo_composites, make_shapes, to_image_tensor)
from actmatch_lite.data.shapes import shape_masks
from actmatch_lite.paths import data_file


# ---------------------------------------------------------------- shapes
def test_shapes_same_seed_identical_different_seed_differs():
    a, b, c = make_shapes(24, seed=3), make_shapes(24, seed=3), make_shapes(24, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.x, c.x)


def test_shapes_shapes_dtypes_ranges_and_balance():
    d = make_shapes(60, seed=0, size=48)
    assert d.x.shape == (60, 3, 48, 48) and d.x.dtype == torch.float32
    assert d.y.shape == (60,) and d.y.dtype == torch.int64
    assert d.masks.shape == (60, 1, 48, 48) and d.masks.dtype == torch.bool
    assert 0.0 <= float(d.x.min()) and float(d.x.max()) <= 1.0
    assert d.y.bincount(minlength=6).tolist() == [10] * 6
    assert d.class_names == SHAPE_CLASSES and len(d) == 60
    assert (d.masks.flatten(1).sum(1) > 20).all()  # every image has a visible target


def test_mask_is_exactly_the_flat_target_colour():
    """Inside the mask every pixel has the same colour (the target is painted opaque and noise-free)."""
    d = make_shapes(12, seed=1)
    for x, m in zip(d.x, d.masks[:, 0]):
        inside = x[:, m]
        assert torch.equal(inside, inside[:, :1].expand_as(inside))
        border = torch.nn.functional.max_pool2d(m[None, None].float(), 3, 1, 1)[0, 0].bool() & ~m
        # the ring just outside the mask is background: never entirely the target colour
        assert not (x[:, border] == inside[:, :1]).all(0).all()


def test_shape_masks_geometry():
    one = np.ones(1, dtype=np.float32)
    for k, name in enumerate(SHAPE_CLASSES):
        m = shape_masks(np.array([k]), 32 * one, 32 * one, 12 * one, np.zeros(1), 64)[0]
        ys, xs = np.nonzero(m)
        assert m.any() and np.hypot(xs + 0.5 - 32, ys + 0.5 - 32).max() <= 12.01, name
    ring = shape_masks(np.array([SHAPE_CLASSES.index("ring")]), 32 * one, 32 * one, 12 * one, np.zeros(1), 64)[0]
    assert not ring[32, 32]  # the ring's hole


# ---------------------------------------------------------------- canvases
@pytest.mark.parametrize("mixed", [False, True])
def test_canvases_disjoint_masks_and_labels(mixed):
    c = make_canvases(12, seed=5, n_instances=(2, 3), size=96, mixed=mixed)
    assert c.x.shape == (12, 3, 96, 96) and c.instance_masks.shape == (12, 3, 1, 96, 96)
    assert c.labels.shape == (12, 3) and c.y.shape == (12,)
    assert (c.instance_masks.sum(1) <= 1).all()  # pairwise disjoint
    valid = c.labels >= 0
    assert (valid.sum(1) >= 2).all()
    assert torch.equal(c.instance_masks.flatten(2).any(2), valid)  # a mask exactly where a label is
    assert torch.equal(c.labels[:, 0], c.y)
    if mixed:
        for row in c.labels:
            row = row[row >= 0]
            assert len(row.unique()) == len(row)
    else:
        assert ((c.labels == c.y[:, None]) | ~valid).all()
    again = make_canvases(12, seed=5, n_instances=(2, 3), size=96, mixed=mixed)
    assert torch.equal(c.x, again.x)


def test_canvases_keep_a_gap_between_instances():
    c = make_canvases(8, seed=2, n_instances=(3, 3))
    grown = torch.nn.functional.max_pool2d(c.instance_masks.flatten(0, 1).float(), 3, 1, 1)
    grown = grown.view_as(c.instance_masks).bool()
    # GAP_PX = 3 between bounding circles: growing each mask by one pixel (8-neighbourhood) keeps them disjoint
    assert (grown.sum(1) <= 1).all()


# ---------------------------------------------------------------- Fashion-MNIST
def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fmnist(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 0, 9]))
    return tmp_path, images


def test_idx_reader_on_hand_written_file(tiny_fmnist):
    folder, images = tiny_fmnist
    assert np.array_equal(fmnist.read_idx(folder / "t10k-images-idx3-ubyte.gz"), images)
    x, y = fmnist.load_fashion_mnist("test", path=folder)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32 and y.tolist() == [7, 0, 9]
    assert torch.allclose(x[:, 0] * 255, torch.from_numpy(images).float())


def test_idx_reader_rejects_bad_header(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="IDX"):
        fmnist.read_idx(bad)


def test_lookup_order_path_then_env_then_system(tiny_fmnist, tmp_path_factory, monkeypatch):
    folder, _ = tiny_fmnist
    other = tmp_path_factory.mktemp("other")
    _write_idx(other / "t10k-images-idx3-ubyte.gz", np.zeros((1, 28, 28)))
    _write_idx(other / "t10k-labels-idx1-ubyte.gz", np.array([4]))
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", tmp_path_factory.mktemp("empty"))
    monkeypatch.setenv(fmnist.ENV_FASHION_MNIST, str(folder))
    assert fmnist.load_fashion_mnist("test")[1].tolist() == [7, 0, 9]            # env var
    assert fmnist.load_fashion_mnist("test", path=other)[1].tolist() == [4]      # explicit path wins
    monkeypatch.delenv(fmnist.ENV_FASHION_MNIST)
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", other)
    assert fmnist.load_fashion_mnist("test")[1].tolist() == [4]                  # system folder last


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(fmnist.ENV_FASHION_MNIST, raising=False)
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        fmnist.load_fashion_mnist("test", path=tmp_path)
    assert fmnist.ENV_FASHION_MNIST in str(err.value) and "download=True" in str(err.value)


def test_env_var_that_cannot_be_honoured_is_an_error(tiny_fmnist, tmp_path_factory, monkeypatch):
    folder, _ = tiny_fmnist
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", folder)                     # a good copy the old code fell back to
    for bad in (folder / "no-such-folder", tmp_path_factory.mktemp("empty")):
        monkeypatch.setenv(fmnist.ENV_FASHION_MNIST, str(bad))
        with pytest.raises(InputError, match=fmnist.ENV_FASHION_MNIST) as err:
            fmnist.load_fashion_mnist("test")
        assert str(bad) in str(err.value) and "unset" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no-such-folder"):        # nor is an explicit path
        fmnist.load_fashion_mnist("test", path=folder / "no-such-folder")


def test_images_and_labels_of_different_lengths_are_refused(tiny_fmnist):
    folder, _ = tiny_fmnist
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5))           # e.g. the train labels next to test images
    with pytest.raises(InputError, match="3 images but 5 labels") as err:
        fmnist.load_fashion_mnist("test", path=folder)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)


@pytest.mark.parametrize("content", [b"not gzip at all", gzip.compress(bytes(100))[:20], b""])
def test_corrupt_data_file_is_named(tiny_fmnist, content):
    folder, _ = tiny_fmnist
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz") as err:
        fmnist.load_fashion_mnist("test", path=folder)
    assert "delete" in str(err.value)


def test_shipped_subset_is_balanced():
    x, y = fmnist.load_fmnist_subset()
    assert x.shape == (2000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.bincount(minlength=10).tolist() == [200] * 10


@pytest.mark.skipif(not fmnist.SYSTEM_DIR.is_dir(), reason="Fashion-MNIST is not installed system-wide")
def test_shipped_subset_matches_the_test_split():
    x_full, y_full = fmnist.load_fashion_mnist("test")
    with np.load(data_file(fmnist.SUBSET_FILE)) as z:
        idx = z["indices"]
    x, y = fmnist.load_fmnist_subset()
    assert torch.equal(y, y_full[idx]) and torch.equal(x, x_full[idx])
    assert np.array_equal(idx, fmnist.subset_indices(y_full.numpy()))


# ---------------------------------------------------------------- photos
def test_load_photo_shapes_and_credits():
    for name in ("chelsea", "camera", "horse"):
        x = load_photo(name, size=64)
        assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert all(len(v) == 3 for v in PHOTO_CREDITS.values())
    with pytest.raises(ValueError, match="chelsea"):
        load_photo("nope")


def test_to_image_tensor_accepts_arrays_and_tensors():
    a = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4)
    t = to_image_tensor(a, channels=3)
    assert t.shape == (1, 3, 3, 4) and torch.allclose(t[0, 0] * 255, torch.from_numpy(a).float())
    assert torch.equal(to_image_tensor(t[0]), t)
    assert to_image_tensor(t, channels=1).shape == (1, 1, 3, 4)


def _pil(mode: str, alpha: int | None = None) -> Image.Image:
    """A 4x6 test image in ``mode`` whose pixels are a known grey ramp; ``alpha`` sets pixel (0, 0)'s alpha."""
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255)
    im = Image.fromarray(grey).convert(mode)
    if alpha is not None:
        im.putpixel((0, 0), (*im.getpixel((0, 0))[:-1], alpha))
    return im


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16", "F"])
def test_pil_images_are_scaled_by_their_own_range(mode):
    grey = torch.from_numpy(np.arange(24, dtype=np.float32).reshape(4, 6) * 10 / 255)
    x = to_image_tensor(_pil(mode), channels=1)
    assert x.shape == (1, 1, 4, 6) and (x[0, 0] - grey).abs().max() <= 1e-6


@pytest.mark.parametrize("image, message", [
    (_pil("RGBA", alpha=0), "transparent"), (_pil("LA", alpha=128), "transparent"),
    (Image.new("CMYK", (4, 4)), "CMYK"), (Image.new("I", (4, 4)), "mode 'I'"),
    (Image.fromarray(np.full((4, 4), 255, dtype=np.float32)), "Divide 8-bit images by 255"),
    (np.zeros((3, 32, 32), dtype=np.uint8), "channels-first"),
])
def test_images_that_cannot_be_read_right_are_refused(image, message):
    with pytest.raises(InputError, match=message):
        to_image_tensor(image, channels=3)


def test_palette_transparency_is_checked_and_one_bit_images_are_black_and_white():
    im = Image.new("P", (4, 4))
    im.putpalette([255, 0, 0] * 256)
    im.info["transparency"] = 0
    with pytest.raises(InputError, match="transparent"):
        to_image_tensor(im)
    bw = Image.fromarray(np.eye(4, dtype=bool))
    assert torch.equal(to_image_tensor(bw)[0, 0], torch.eye(4))


def test_multi_instance_photo_has_disjoint_instances():
    p = make_multi_instance_photo("chelsea", n_instances=3, size=96)
    assert p.x.shape == (1, 3, 96, 96) and p.instance_masks.shape == (3, 1, 96, 96)
    assert (p.instance_masks.sum(0) <= 1).all() and p.boxes.shape == (3, 4)
    for (t, l, b, r), m in zip(p.boxes.tolist(), p.instance_masks):
        assert int(m.sum()) == (b - t) * (r - l)


def test_multi_instance_photo_diagonal_layout_keeps_copies_apart():
    p = make_multi_instance_photo("chelsea", n_instances=2, size=192, layout="diagonal")
    (t0, l0, b0, r0), (t1, l1, b1, r1) = p.boxes.tolist()
    assert (t0, l0) == (4, 4) and (b1, r1) == (188, 188)      # corner to corner, `gap` from the border
    assert r0 - l0 == 110 and b0 <= t1                          # 57.5 % of the side; rows never shared
    assert (p.instance_masks.sum(0) <= 1).all()
    with pytest.raises(ValueError, match="touch"):
        make_multi_instance_photo("chelsea", n_instances=3, size=96, layout="diagonal", width=0.5)
    with pytest.raises(ValueError, match="layout"):
        make_multi_instance_photo("chelsea", layout="grid")


def test_photo_composites_are_seeded_with_exact_masks_on_either_diagonal():
    a, b = make_photo_composites(6, seed=3, size=160), make_photo_composites(6, seed=3, size=160)
    assert all(torch.equal(p.x, q.x) and torch.equal(p.instance_masks, q.instance_masks) for p, q in zip(a, b))
    assert not torch.equal(a[0].x, make_photo_composites(1, seed=4, size=160)[0].x)
    flipped = 0
    for p in a:
        assert 1 <= len(p.boxes) <= 3 and (p.instance_masks.sum(0) <= 1).all()
        for (t, l, bt, r), m in zip(p.boxes.tolist(), p.instance_masks):   # each mask is exactly its box
            box = torch.zeros_like(m)
            box[:, t:bt, l:r] = True
            assert torch.equal(m, box)
        first = p.boxes[0].tolist()
        flipped += first[1] > 80   # the anti-diagonal starts top-right
    assert 0 < flipped < 6 or len(a) < 2
