"""Bad input gives one clear error, and the caller's classifier always comes back as it came: same mode,
same requires_grad flags, same weights, no hook left on any module, in-place ReLUs still in place."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from _tiny import TAPS, TinyCNN, images, tiny_loaded
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.method.amortized import AmortizedExplainer
from actmatch_lite.method.config import ExplainConfig, get_preset
from actmatch_lite.method.explainer import explain
from actmatch_lite.method.instances import explain_instances
from actmatch_lite.method.masknet import MaskUNet
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
    ({"config": CFG, "target": torch.tensor([0, 1, 2])}, "got 3 targets for 2 images"),
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


# --- Inputs that pass validation never end in a deep torch trace (issue #12) --------------------------------------

def _amortized(lm, x, **kwargs):
    return AmortizedExplainer(lm, MaskUNet(lm.channels, lm.input_size), CFG).explain(x, **kwargs)


ENTRIES = {   # the three entry points share one set of checks: same accepted forms, same messages
    "explain": lambda clf, x, **kwargs: explain(clf, x, config=CFG, progress=False, **kwargs),
    "amortized": _amortized,
    "instances": lambda clf, x, **kwargs: explain_instances(clf, x, config=CFG, max_instances=1, **kwargs),
}


def _masks(res):
    return torch.cat(list(res.masks)) if hasattr(res, "masks") else res.mask


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_cast_to_the_classifier_dtype(entry, dtype):
    """float64 is what torch.as_tensor(ndarray) gives; each is cast to float32, exactly as the caller would."""
    lm, x = tiny_loaded(), images(2).to(dtype)
    res, ref = ENTRIES[entry](lm, x), ENTRIES[entry](lm, x.float())
    assert torch.equal(_masks(res), _masks(ref))
    if entry != "instances":
        assert res.explanation.dtype == torch.float32 and torch.equal(res.explanation, ref.explanation)
    assert_clean(lm.clf)


def test_a_fixed_size_head_needs_exactly_its_input_size():
    fm = load_model("fmnist-cnn", device="cpu")
    for run in (lambda x: explain(fm, x, progress=False), lambda x: explain_instances(fm, x)):
        with pytest.raises(InputError, match=r"x is 32x32 but fmnist-cnn takes exactly 28x28.*resize"):
            run(torch.rand(1, 1, 32, 32))


def test_an_image_far_above_the_training_size_warns_with_the_fix():
    lm = tiny_loaded()   # trained at 16x16: 80x80 is 25 times the pixels and 25 times the cost per step
    with pytest.warns(UserWarning, match=r"x is 80x80, 25x the pixels tiny was trained at \(16x16\).*resize"):
        explain(lm, torch.rand(1, 3, 80, 80), config=dataclasses.replace(CFG, steps=1), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # up to 4 times the side is quiet (shapes canvases are 96 px for 64)
        explain(lm, torch.rand(1, 3, 64, 64), config=dataclasses.replace(CFG, steps=1), progress=False)


@pytest.mark.parametrize("side", [1, 2, 7])
def test_a_plain_module_on_tiny_images_is_refused_for_the_mask_network(side):
    clf = TinyCNN()
    with pytest.raises(InputError, match=rf"x is {side}x{side} but the mask network needs at least 8x8"):
        explain(clf, torch.rand(1, 3, side, side), config=CFG, progress=False)
    assert_clean(clf)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("seed", [None, 1.5, 2**64, True, "0"])
def test_a_bad_seed_is_named(entry, seed):
    with pytest.raises(InputError, match=r"seed must be an int with \|seed\| < 2\*\*62"):
        ENTRIES[entry](tiny_loaded(), images(2), seed=seed)


def test_a_numpy_integer_seed_is_an_int():
    a = explain(tiny_loaded(), images(1), config=CFG, seed=np.int64(3), progress=False)
    b = explain(tiny_loaded(), images(1), config=CFG, seed=3, progress=False)
    assert torch.equal(a.soft_mask, b.soft_mask)


BAD_TARGETS = {
    "negative": (-1, r"target classes must lie in \[0, 3\), got \[-1, -1\]"),
    "too large": (3, r"target classes must lie in \[0, 3\), got \[3, 3\]"),
    "float": (1.5, r"target must be None, a class index, a class name or one per image \(2 of them\), got 1.5"),
    "bool": (True, "target must be None, a class index"),
    "wrong length": ([0, 1, 2], r"got 3 targets for 2 images"),
    "matrix": (torch.zeros(2, 1, dtype=torch.long), r"got a tensor of shape \(2, 1\)"),
    "unknown name": ("circle", r"no class named 'circle'; tiny's classes are \('a', 'b', 'c'\)"),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_bad_targets_give_the_same_message_everywhere(entry, case):
    target, message = BAD_TARGETS[case]
    lm = tiny_loaded()
    with pytest.raises(InputError, match=message):
        ENTRIES[entry](lm, images(2), target=target)
    assert_clean(lm.clf)


@pytest.mark.parametrize("entry", ["explain", "amortized"])
def test_targets_by_name_list_or_int32_tensor_mean_the_same_classes(entry):
    lm = tiny_loaded()
    ref = ENTRIES[entry](lm, images(2), target=torch.tensor([1, 2]))
    for target in ([1, 2], ["b", "c"], torch.tensor([1, 2], dtype=torch.int32), (1, 2)):
        res = ENTRIES[entry](lm, images(2), target=target)
        assert res.target.tolist() == [1, 2] and torch.equal(res.mask, ref.mask)
    assert ENTRIES[entry](lm, images(2), target="b").target.tolist() == [1, 1]


def test_a_class_name_for_a_plain_module_asks_for_class_names():
    with pytest.raises(InputError, match=r"target='b' is a class name, but a plain nn.Module has no class_names"):
        explain(TinyCNN(), images(2), config=CFG, target="b", progress=False)


class TupleOut(TinyCNN):
    def forward(self, x):
        return super().forward(x), x.mean()


class DictOut(TinyCNN):
    def forward(self, x):
        return {"logits": super().forward(x), "aux": x.mean()}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("cls, fix", [(TupleOut, r"model\(x\)\[0\]"), (DictOut, r"model\(x\)\['logits'\]")])
def test_a_classifier_that_does_not_return_logits_is_named_with_the_fix(entry, cls, fix):
    lm = dataclasses.replace(tiny_loaded(), clf=cls().eval())
    for target in (None, 0):
        with pytest.raises(InputError, match=rf"the classifier returned a {('tuple', 'dict')[cls is DictOut]} but "
                                             rf"logits \(B, K\) are needed; wrap it in a small module.*{fix}"):
            ENTRIES[entry](lm, images(2), target=target)
    assert_clean(lm.clf)


@pytest.mark.parametrize("value, shown", [(1.0001, r"\[0, 1.0001\]"), (-1e-6, r"\[-1e-06, 1\]"),
                                          (1 + 2**-20, r"\[0, 1.000001\]")])
def test_the_range_message_shows_the_offending_value(value, shown):
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = value, 1.0
    with pytest.raises(InputError, match=rf"x has values in {shown} but pixels in \[0, 1\]"):
        explain(tiny_loaded(), x, config=CFG, progress=False)
