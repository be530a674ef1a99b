"""Baselines: shapes, exact areas, determinism, an untouched model, and known answers on a colour model."""
import pytest
import torch
from _tiny import no_hooks
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation import metrics as M
from actmatch_lite.evaluation.baselines import BASELINES, baseline_masks, masks_at_area, pixel_count

# Settings that keep each baseline to a fraction of a second on 16×16 images.
FAST = {"gradcam": {"layer": "features"}, "integrated-gradients": {"n_steps": 8},
        "rise": {"n_masks": 64, "grid": 4}, "meaningful-perturbation": {"steps": 20},
        "extremal-perturbation": {"steps": 20}}


class Colour(nn.Module):
    """Class 0 = "red", class 1 = "green": ``z = gain · (mean red, mean green)`` through a 1×1 conv, ReLU, GAP.

    Grad-CAM on ``features`` for class 0 is exactly the red channel; Integrated Gradients too.
    """

    def __init__(self, gain=10.0):
        super().__init__()
        self.features = nn.Conv2d(3, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, 0] = self.features.weight[1, 1] = 1.0
            self.fc.weight.copy_(gain * torch.eye(2))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.features(x))).flatten(1))


def scene(b=2):
    """A 6×6 red square (36 px, top left) and a 4×4 green square (bottom right): the model says red."""
    x = torch.zeros(b, 3, 16, 16)
    x[:, 0, 2:8, 2:8] = 1.0
    x[:, 1, 10:14, 10:14] = 1.0
    red, green = torch.zeros(b, 1, 16, 16, dtype=torch.bool), torch.zeros(b, 1, 16, 16, dtype=torch.bool)
    red[..., 2:8, 2:8] = True
    green[..., 10:14, 10:14] = True
    return x, red, green


# ---------------------------------------------------------------- masks_at_area
def test_masks_at_area_keeps_exactly_k_per_image():
    scores = torch.rand(3, 1, 5, 7, generator=torch.Generator().manual_seed(0))
    m = masks_at_area(scores, torch.tensor([0, 4, 35]))
    assert m.dtype == torch.bool and m.shape == scores.shape
    assert pixel_count(m).tolist() == [0, 4, 35]
    top4 = scores[1].flatten().topk(4).indices.sort().values
    assert m[1].flatten().nonzero().flatten().tolist() == top4.tolist()


def test_masks_at_area_breaks_ties_by_index():
    m = masks_at_area(torch.zeros(1, 1, 3, 3), 4)
    assert m.flatten().tolist() == [True] * 4 + [False] * 5
    with pytest.raises(InputError):
        masks_at_area(torch.zeros(1, 1, 3, 3), 10)
    with pytest.raises(InputError):
        masks_at_area(torch.full((1, 1, 3, 3), float("nan")), 1)


def test_baseline_masks_matches_the_reference_area():
    x, red, _ = scene()
    ref = torch.zeros(2, 1, 16, 16)
    ref[0, :, :3, :3], ref[1, :, :5, :5] = 0.9, 0.9                  # soft reference: 9 and 25 pixels kept
    assert pixel_count(baseline_masks("square", Colour(), x, ref)).tolist() == [9, 25]
    with pytest.raises(KeyError, match="gradcam"):
        baseline_masks("lime", Colour(), x, ref)


# ---------------------------------------------------------------- every baseline
@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_shape_area_determinism_and_untouched_model(name):
    torch.manual_seed(0)
    clf = Colour().train()                                          # the caller's modes and flags ...
    clf.fc.bias.requires_grad_(False)
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    x, red, _ = scene()
    x_before = x.clone()

    s1 = BASELINES[name](clf, x, None, seed=3, **FAST.get(name, {}))
    s2 = BASELINES[name](clf, x, None, seed=3, **FAST.get(name, {}))
    assert s1.shape == (2, 1, 16, 16) and torch.isfinite(s1).all()
    assert torch.equal(s1, s2)                                       # same seed, same scores
    assert pixel_count(masks_at_area(s1, torch.tensor([36, 7]))).tolist() == [36, 7]

    assert clf.training and all(mod.training for mod in clf.modules())     # ... come back unchanged
    assert [p.requires_grad for p in clf.parameters()] == [True, True, False]
    assert all(torch.equal(before[k], v) for k, v in clf.state_dict().items())
    assert no_hooks(clf) and torch.equal(x, x_before) and not x.requires_grad


@pytest.mark.parametrize("name", ["random", "rise"])
def test_seed_changes_random_baselines(name):
    x, _, _ = scene()
    a = BASELINES[name](Colour(), x, None, seed=0, **FAST.get(name, {}))
    b = BASELINES[name](Colour(), x, None, seed=1, **FAST.get(name, {}))
    assert not torch.equal(a, b)


def test_square_is_centred():
    x = torch.zeros(1, 1, 6, 6)
    assert masks_at_area(BASELINES["square"](None, x), 4)[0, 0, 2:4, 2:4].all()


def test_sobel_finds_the_square_edges():
    x, red, _ = scene(1)
    s = BASELINES["sobel"](None, x)
    flat_inside, flat_outside, edge = s[0, 0, 5, 5], s[0, 0, 0, 0], s[0, 0, 2, 4]
    assert flat_inside < 1e-6 and flat_outside < 1e-6 and edge > 0.5


# ---------------------------------------------------------------- known answers on the colour model
@pytest.mark.parametrize("target, region", [(0, "red"), (1, "green")])
def test_gradcam_highlights_the_class_region(target, region):
    x, red, green = scene()
    want = red if region == "red" else green
    m = masks_at_area(BASELINES["gradcam"](Colour(), x, target, layer="features"), pixel_count(want))
    assert M.iou(m, want).tolist() == [1.0, 1.0]


def test_gradcam_needs_a_known_layer():
    x, _, _ = scene()
    with pytest.raises(InputError, match="features, relu, pool, fc"):
        BASELINES["gradcam"](Colour(), x, None)
    with pytest.raises(InputError, match="unknown layer 'layer4'"):
        BASELINES["gradcam"](Colour(), x, None, layer="layer4")


def test_integrated_gradients_and_occlusion_find_the_red_square():
    x, red, _ = scene()
    for name in ("integrated-gradients", "occlusion"):
        m = masks_at_area(BASELINES[name](Colour(), x, None, **FAST.get(name, {})), 36)
        assert M.iou(m, red).tolist() == [1.0, 1.0], name


def test_rise_scores_the_red_square_above_the_rest():
    x, red, green = scene(1)
    s = BASELINES["rise"](Colour(gain=40.0), x, None, n_masks=500, grid=4)[0, 0]
    assert s[red[0, 0]].mean() > s[~red[0, 0] & ~green[0, 0]].mean() > s[green[0, 0]].mean()


def test_meaningful_perturbation_keeps_the_label_and_drops_the_distractor():
    clf, (x, red, green) = Colour(), scene()
    m_soft = BASELINES["meaningful-perturbation"](clf, x, None, steps=100)
    m = m_soft > 0.5
    assert M.sufficiency(clf, x, m).tolist() == [1.0, 1.0]
    assert (M.area(m) < 0.5).all()
    assert m_soft[red].mean() > 0.5 > m_soft[green].mean()


def test_rise_does_not_depend_on_the_batch_size():
    x, _, _ = scene()
    a = BASELINES["rise"](Colour(), x, None, n_masks=40, grid=4, batch_size=6)
    b = BASELINES["rise"](Colour(), x, None, n_masks=40, grid=4, batch_size=256)
    assert torch.allclose(a, b, atol=1e-6)


def test_captum_leaves_no_hooks_after_an_error():
    clf = Colour().train()
    x, _, _ = scene()
    with pytest.raises((IndexError, RuntimeError)):
        BASELINES["gradcam"](clf, x, 5, layer="features")           # class 5 does not exist
    assert no_hooks(clf) and clf.training and all(p.requires_grad for p in clf.parameters())


@pytest.mark.parametrize("name", ["integrated-gradients", "occlusion", "meaningful-perturbation"])
def test_the_name_mean_is_refused_where_the_dataset_mean_is_unknown(name):
    x, _, _ = scene()
    with pytest.raises(InputError, match="needs the dataset mean colour"):
        BASELINES[name](Colour(), x, None, fill="mean", **FAST.get(name, {}))
