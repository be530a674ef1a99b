"""Bad input gives one clear error, and the caller's classifier always comes back as it came: same mode,
same requires_grad flags, same weights, no hook left on any module, in-place ReLUs still in place."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from _tiny import TAPS, TinyCNN, images, tiny_loaded
from actmatch_lite._validate import InputError
from actmatch_lite.config import ExplainConfig, get_preset
from actmatch_lite.explainer import explain
from actmatch_lite.models import load_model

CFG = ExplainConfig(taps=TAPS, steps=2, lr=1e-3, lambda_nec=1.0, fill="zero")


def assert_clean(model: nn.Module) -> None:
    for module in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert len(getattr(module, attr)) == 0, f"{type(module).__name__}.{attr} left behind"
        if isinstance(module, nn.ReLU):
            assert module.inplace is True


BAD_IMAGES = {
    "rank 3": (torch.rand(3, 16, 16), "add the batch dimension"),
    "rank 5": (torch.rand(1, 1, 3, 16, 16), "4 dims"),
    "channels": (torch.rand(1, 1, 16, 16), "1 channels but the classifier expects 3"),
    "channels last": (torch.rand(1, 16, 16, 3), "Channels-last"),
    "dtype": ((torch.rand(1, 3, 16, 16) * 255).to(torch.uint8), "dtype torch.uint8"),
    "range": (torch.rand(1, 3, 16, 16) * 255, "values in"),
    "nan": (torch.full((1, 3, 16, 16), float("nan")), "NaN or inf"),
    "inf": (torch.full((1, 3, 16, 16), float("inf")), "NaN or inf"),
    "empty": (torch.rand(0, 3, 16, 16), "empty batch"),
    "too small": (torch.rand(1, 3, 4, 4), "needs at least 8x8"),
    "not a tensor": ([[0.0]], "must be a torch.Tensor"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_images_raise_a_clear_error_and_leave_the_model_clean(case):
    lm = tiny_loaded()
    x, message = BAD_IMAGES[case]
    with pytest.raises(InputError, match=message):
        explain(lm, x, config=dataclasses.replace(get_preset("shapes"), steps=2), progress=False)
    assert_clean(lm.clf)


@pytest.mark.parametrize("kwargs, message", [
    ({"config": "no-such-preset"}, r"unknown preset 'no-such-preset'; known presets: \["),
    ({"config": dataclasses.replace(CFG, taps=("relu1", "relu3"))}, r"unknown layer 'relu3'.*closest first"),
    ({"config": dataclasses.replace(CFG, taps=None)}, "needs tap layers"),
    ({"config": 3}, "config must be an ExplainConfig"),
    ({"config": CFG, "target": 7}, r"target classes must lie in \[0, 3\)"),
    ({"config": CFG, "target": torch.tensor([0, 1, 2])}, "target must be an int"),
    ({"config": CFG, "device": "meta"}, "explain does not move the caller's model"),
    ({"config": CFG, "device": "gpu"}, r"unknown device 'gpu': use 'cpu', 'cuda'"),
    pytest.param({"config": CFG, "device": "cuda:7"}, r"device 'cuda:7' was asked for, but torch sees \d CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a GPU 7")),
])
def test_bad_settings_raise_a_clear_error_and_leave_the_model_clean(kwargs, message):
    clf = TinyCNN()
    with pytest.raises(InputError, match=message):
        explain(clf, images(2), progress=False, **kwargs)
    assert_clean(clf)


def test_plain_module_without_config_and_non_module_are_refused():
    with pytest.raises(InputError, match="needs config="):
        explain(TinyCNN(), images(1))
    with pytest.raises(InputError, match="torch.nn.Module or a LoadedModel"):
        explain(lambda x: x, images(1), config=CFG)


def test_bad_config_values_are_refused_at_construction():
    for change, message in [({"lambda_area": -1.0}, "lambda_area must be >= 0"), ({"fill": "noise"}, "fill must be"),
                            ({"backgrounds": ("shuffle",)}, "backgrounds must be"), ({"tv_neighbours": 6}, "4 or 8"),
                            ({"distances": ("cos",)}, "distances must be"), ({"steps": 0}, "steps must be"),
                            ({"tap_weights": (1.0,)}, "tap_weights has 1 entries but taps has 2")]:
        with pytest.raises(InputError, match=message):
            dataclasses.replace(CFG, **change)


def test_classifier_in_training_mode_is_explained_in_eval_and_handed_back_unchanged():
    clf = TinyCNN().train()
    clf.conv1.weight.requires_grad_(False)   # a mixed set of flags must come back exactly
    flags = {name: p.requires_grad for name, p in clf.named_parameters()}
    weights = {name: p.detach().clone() for name, p in clf.named_parameters()}
    seen = []
    clf.head.register_forward_pre_hook(lambda module, inputs: seen.append(module.training))
    explain(clf, images(2), config=CFG, progress=False)
    assert seen and not any(seen)   # every forward pass ran in eval mode (Dropout off)
    assert clf.training and all(m.training for m in clf.modules())
    assert {name: p.requires_grad for name, p in clf.named_parameters()} == flags
    assert all(torch.equal(p, weights[name]) for name, p in clf.named_parameters())
    clf.head._forward_pre_hooks.clear()   # the test's own hook
    assert_clean(clf)


def test_no_hook_left_after_normal_runs_and_errors_mid_run():
    lm = tiny_loaded()
    explain(lm, images(2), config=dataclasses.replace(CFG, lambda_rob=1.0), progress=False)
    assert_clean(lm.clf)

    class Exploding(TinyCNN):
        calls = 0

        def forward(self, x):
            Exploding.calls += 1
            if Exploding.calls > 2:   # the reference pass and the first step succeed, then it fails mid-run
                raise RuntimeError("boom")
            return super().forward(x)

    clf = Exploding()
    with pytest.raises(RuntimeError, match="boom"):
        explain(clf, images(2), config=CFG, progress=False)
    assert_clean(clf)
    assert clf.training


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_load_model_on_a_missing_gpu_says_so():
    with pytest.raises(InputError, match=r"device 'cuda' was asked for, but torch sees 0 CUDA GPU\(s\) here: use 'cpu'"):
        load_model("shapes-cnn", device="cuda")
