"""Metrics M1–M14 on hand-built cases whose answers are known in closed form."""
import math

import pytest
import torch
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation import metrics as M


# ---------------------------------------------------------------- tiny classifiers with known outputs
class RegionProb(nn.Module):
    """``p(class 0) = q``, the mean of channel 0 over ``region``: logits are ``(log q, log(1 - q))``."""

    def __init__(self, region):
        super().__init__()
        self.register_buffer("region", region.float())
        self.scale = nn.Parameter(torch.ones(()))     # a parameter, so flags can be checked

    def forward(self, x):
        q = ((x[:, 0] * self.region).sum((1, 2)) / self.region.sum()).clamp(1e-6, 1 - 1e-6)
        return self.scale * torch.stack([q.log(), (1 - q).log()], 1)


class CentreModel(nn.Module):
    """Class 0 iff the mean of the centre 4×4 exceeds 0.9: logits ``(mean_centre, 0.9)``."""

    def forward(self, x):
        c = x[:, 0, 2:6, 2:6].mean((1, 2))
        return torch.stack([c, torch.full_like(c, 0.9)], 1)


class TwoPatches(nn.Module):
    """Class 0 iff both the top-left and the top-right 4×4 patches are lit: logits ``(a + b - 1.5, 0)``."""

    def forward(self, x):
        a, b = x[:, 0, :4, :4].mean((1, 2)), x[:, 0, :4, 4:].mean((1, 2))
        return torch.stack([a + b - 1.5, torch.zeros_like(a)], 1)


def box(h, w, r0, r1, c0, c1, b=1):
    m = torch.zeros(b, 1, h, w, dtype=torch.bool)
    m[..., r0:r1, c0:c1] = True
    return m


def checkerboard(h, w):
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i + j) % 2 == 0).view(1, 1, h, w)


TOP_LEFT = box(8, 8, 0, 4, 0, 4)[0, 0]          # the region RegionProb reads: 16 of 64 pixels
ONES = torch.ones(1, 1, 8, 8)


# ---------------------------------------------------------------- M4–M6: the mask alone
def test_area_object_empty_full():
    masks = torch.cat([box(8, 8, 0, 4, 0, 4), box(8, 8, 0, 0, 0, 0), box(8, 8, 0, 8, 0, 8)])
    assert M.area(masks).tolist() == [0.25, 0.0, 1.0]
    assert M.area(torch.full((1, 1, 4, 4), 0.6)).item() == 1.0       # soft masks use 1[m > 0.5]


def test_crispness():
    soft = torch.tensor([0.0, 0.04, 0.05, 0.5, 0.95, 0.96, 1.0, 0.3]).view(1, 1, 2, 4)
    assert M.crispness(soft).item() == pytest.approx(4 / 8)
    assert M.crispness(checkerboard(4, 4)).item() == 0.0


@pytest.mark.parametrize("mask, tv, parts", [
    (box(8, 8, 2, 6, 2, 6), 16, 1),                      # 4×4 square inside: boundary 4·4
    (box(8, 8, 0, 0, 0, 0), 0, 0),                        # empty
    (box(8, 8, 0, 8, 0, 8), 0, 1),                        # full
    (checkerboard(6, 6), 6 * 5 + 6 * 5, 1),               # every edge differs; corners join the squares
    (box(8, 8, 0, 2, 0, 2) | box(8, 8, 5, 7, 5, 7), 4 + 8, 2),   # the image border is not boundary
])
def test_total_variation_and_components(mask, tv, parts):
    assert M.total_variation(mask).item() == tv
    assert M.components(mask).item() == parts


# ---------------------------------------------------------------- M9: localisation
def test_iou_and_precision_exact():
    a, b = box(8, 8, 0, 4, 0, 4), box(8, 8, 2, 6, 0, 4)    # 16 and 16 pixels, 8 shared
    assert M.iou(a, b).item() == pytest.approx(8 / 24)
    assert M.precision(box(8, 8, 0, 2, 0, 4), a).item() == 1.0
    assert M.precision(b, a).item() == 0.5
    empty = box(8, 8, 0, 0, 0, 0)
    assert M.iou(empty, empty).item() == 1.0 and M.precision(empty, a).item() == 0.0


def test_pointing_game_inside_outside_and_ties():
    gt = box(4, 4, 0, 2, 0, 2)
    inside, outside = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    inside[..., 1, 1], outside[..., 3, 3] = 0.9, 0.9
    tied = torch.zeros(1, 1, 4, 4)
    tied[..., 0, 0], tied[..., 3, 3] = 1.0, 1.0          # one of two maxima on the object
    assert M.pointing_game(torch.cat([inside, outside, tied]), gt.expand(3, -1, -1, -1)).tolist() == [1, 0, 0.5]


# ---------------------------------------------------------------- M10: instances
A, B_, C = box(12, 12, 0, 4, 0, 4)[0], box(12, 12, 0, 4, 6, 10)[0], box(12, 12, 8, 12, 0, 4)[0]
INSTANCES = torch.cat([A, B_, C])                         # (3, 12, 12), 16 pixels each


def test_instance_recall_and_purity():
    inside_b = box(12, 12, 1, 3, 7, 9)[0]                 # IoU 4/16 < 0.3 but precision 1 ≥ 0.7
    everything = A | B_ | C                               # IoU 1/3 with each, yet matches only one
    sets = [torch.cat([A, inside_b]), everything, torch.cat([A, A]), torch.zeros(0, 12, 12)]
    recall = M.instance_recall(sets, [INSTANCES] * 4)
    purity = M.instance_purity(sets, [INSTANCES] * 4)
    assert recall.tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0.0])
    assert purity[:3].tolist() == [1.0, 0.0, 1.0] and math.isnan(purity[3])
    assert math.isnan(M.instance_recall([A], [torch.zeros(0, 12, 12)]).item())


def test_purity_counts_a_mostly_on_instance_mask():
    mostly = A.clone()
    mostly[0, 5, 0:4] = True                              # 16 of 20 pixels on A: 80 % ≥ 70 %
    half = A | B_                                         # 50 % on each
    assert M.instance_purity([torch.cat([mostly, half])], [INSTANCES]).item() == 0.5


# ---------------------------------------------------------------- M1, M3: sufficiency and necessity
def test_sufficiency_and_confidence_change():
    clf = RegionProb(TOP_LEFT)
    x = ONES.expand(2, -1, -1, -1)
    quarter = box(8, 8, 0, 2, 0, 2)                       # a quarter of the region: q = 0.25
    m = torch.cat([box(8, 8, 0, 4, 0, 4), quarter])
    assert M.sufficiency(clf, x, m).tolist() == [1.0, 0.0]
    assert M.confidence_change(clf, x, m).tolist() == pytest.approx([0.0, -0.75], abs=1e-5)


def test_necessity_and_drop():
    clf = RegionProb(TOP_LEFT)
    x = ONES.expand(2, -1, -1, -1)
    m = torch.cat([box(8, 8, 0, 4, 0, 4), box(8, 8, 0, 2, 0, 2)])   # remove all / a quarter of the region
    assert M.necessity(clf, x, m).tolist() == [1.0, 0.0]
    assert M.necessity_drop(clf, x, m).tolist() == pytest.approx([1.0, 0.25], abs=1e-5)


def test_metrics_hand_the_model_back_unchanged():
    clf = RegionProb(TOP_LEFT).train()
    M.sufficiency(clf, ONES, box(8, 8, 0, 4, 0, 4))
    M.deletion_auc(clf, ONES, torch.rand(1, 1, 8, 8))
    assert clf.training and clf.scale.requires_grad and clf.scale.item() == 1.0


# ---------------------------------------------------------------- M2: robustness
def test_robustness_with_a_centre_only_classifier():
    clf, x = CentreModel(), ONES.expand(2, -1, -1, -1)
    centre = box(8, 8, 2, 6, 2, 6, b=2)
    assert M.robustness(clf, x, centre).tolist() == [1.0, 1.0]
    assert M.robustness(clf, x, ~centre, kinds=("gaussian", "uniform", "uniform")).tolist() == [0.0, 0.0]
    bgs = torch.stack([torch.ones_like(x), torch.zeros_like(x)])          # one helps, one does not
    assert M.robustness(clf, x, ~centre, backgrounds=bgs).tolist() == [0.5, 0.5]


def test_robustness_is_seeded():
    clf, x = CentreModel(), torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.7
    m = box(8, 8, 3, 5, 0, 8, b=3)
    assert torch.equal(M.robustness(clf, x, m, seed=4), M.robustness(clf, x, m, seed=4))


def test_robustness_leaves_the_callers_random_state_alone():
    clf, x = CentreModel(), torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.7
    m = box(8, 8, 3, 5, 0, 8, b=3)
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    M.robustness(clf, x, m, seed=4)
    assert torch.equal(torch.rand(4), expected)   # a metric that reseeded the global generator breaks this


# ---------------------------------------------------------------- M8: deletion and insertion
def test_deletion_and_insertion_auc_in_closed_form():
    # p(y*) = kept fraction of the 16-pixel region; 32 steps of 2 pixels meet its end exactly (t = 0.25).
    clf = RegionProb(TOP_LEFT)
    first = TOP_LEFT.float().view(1, 1, 8, 8)              # the region ranked first ...
    last = 1 - first                                       # ... or last
    x = ONES.expand(2, -1, -1, -1)
    scores = torch.cat([first, last])
    assert M.deletion_auc(clf, x, scores, steps=32).tolist() == pytest.approx([0.125, 0.875], abs=1e-4)
    assert M.insertion_auc(clf, x, scores, steps=32).tolist() == pytest.approx([0.875, 0.125], abs=1e-4)
    t, p = M.deletion_curve(clf, x, scores, steps=32, batch_size=7)   # small batches give the same curve
    assert t[0] == 0 and t[-1] == 1 and p.shape == (2, 33)
    assert p[0, :9].tolist() == pytest.approx([1 - s / 8 for s in range(9)], abs=1e-5)


def test_curves_with_blur_fill_stay_in_range():
    clf = RegionProb(TOP_LEFT)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for fn in (M.deletion_auc, M.insertion_auc):
        auc = fn(clf, x, torch.rand(2, 1, 8, 8), fill="blur", steps=20)
        assert auc.shape == (2,) and ((auc >= 0) & (auc <= 1)).all()


def test_pixel_rank_breaks_ties_by_index():
    assert M.pixel_rank(torch.zeros(1, 1, 2, 3)).tolist() == [[0, 1, 2, 3, 4, 5]]
    assert M.pixel_rank(torch.tensor([[[[1.0, 3.0], [3.0, 2.0]]]])).tolist() == [[3, 0, 1, 2]]


# ---------------------------------------------------------------- M7: activations
class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.relu = nn.ReLU(inplace=True)                  # in-place: the recorded conv output must survive it
        self.head = nn.Linear(2 * 64, 2)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).flatten(1))


def test_activation_distance_by_hand():
    a = {"l": torch.tensor([[3.0, 4.0], [1.0, 0.0]])}
    b = {"l": torch.tensor([[0.0, 0.0], [-1.0, 0.0]])}
    assert M.activation_distance(a, b)["l"].tolist() == pytest.approx([1.0, 2.0])
    assert M.activation_distance(a, b, distance="mse")["l"].tolist() == pytest.approx([12.5, 2.0])
    assert M.activation_distance(a, a, distance="cosine")["l"].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert M.activation_distance(b, a, distance="cosine")["l"][1].item() == pytest.approx(2.0)


def test_activation_fidelity_full_mask_is_zero_and_hooks_go():
    torch.manual_seed(0)
    clf = TwoLayer()
    x = torch.rand(2, 1, 8, 8)
    full = M.activation_fidelity(clf, x, torch.ones(2, 1, 8, 8), ["conv", "relu", "head"])
    assert all(v.abs().max() == 0 for v in full.values())
    part = M.activation_fidelity(clf, x, box(8, 8, 0, 4, 0, 8, b=2), ["conv"])
    assert (part["conv"] > 0).all()
    assert not any(mod._forward_hooks for mod in clf.modules())
    with pytest.raises(InputError, match="unknown layer 'nope'"):
        M.activation_fidelity(clf, x, torch.ones(2, 1, 8, 8), ["nope"])


# ---------------------------------------------------------------- M11: 1-minimality
def test_one_minimality_on_a_classifier_that_needs_two_patches():
    clf, x = TwoPatches(), ONES.expand(3, -1, -1, -1)
    both = box(8, 8, 0, 4, 0, 8)                          # exactly the two needed patches
    three = both | box(8, 8, 4, 8, 0, 4)                  # plus a superfluous one
    one = box(8, 8, 0, 4, 0, 4)                           # not sufficient: undefined
    score = M.one_minimality(clf, x, torch.cat([both, three, one]), patch=4, batch_size=2)
    assert score[:2].tolist() == pytest.approx([1.0, 2 / 3]) and math.isnan(score[2])


# ---------------------------------------------------------------- M12, M13: agreement
def test_sanity_spearman_identical_reversed_constant():
    s = torch.arange(16.0).view(1, 1, 4, 4)
    rho = M.sanity_spearman(torch.cat([s, s, s]), torch.cat([s, -s, torch.zeros_like(s)]))
    assert rho[:2].tolist() == pytest.approx([1.0, -1.0]) and math.isnan(rho[2])
    assert M.sanity_iou(box(8, 8, 0, 4, 0, 4), box(8, 8, 2, 6, 0, 4)).item() == pytest.approx(1 / 3)


def test_seed_stability():
    a, b = box(8, 8, 0, 4, 0, 4), box(8, 8, 2, 6, 0, 4)
    assert M.seed_stability([a, a, a]).item() == 1.0
    assert M.seed_stability([a, a, b]).item() == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)


def test_shift_images_and_shift_stability():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    shifted = M.shift_images(x, (1, 2))
    assert shifted[0, 0, 1:, 2:].equal(x[0, 0, :3, :2]) and shifted[0, 0, 0].sum() == 0
    img = box(12, 12, 4, 8, 4, 8).float()
    follows = lambda z: (z, z > 0.5)                                  # noqa: E731
    fixed = lambda z: (None, box(12, 12, 2, 6, 2, 6, b=len(z)))        # noqa: E731  ignores the image
    assert M.shift_stability(follows, img).item() == 1.0
    assert M.shift_stability(fixed, img).item() == pytest.approx(4 / 28)   # 2×2 overlap of two 4×4 squares


# ---------------------------------------------------------------- M14, summary, registry
def test_time_per_image_counts_calls_and_divides_by_batch():
    calls = []
    t = M.time_per_image(lambda z: calls.append(len(z)), torch.zeros(4, 1, 2, 2), repeats=3, warmup=2)
    assert len(calls) == 5 and t >= 0


def test_summarise_skips_nan():
    s = M.summarise(torch.tensor([1.0, 3.0, math.nan]))
    assert (s.mean, s.n) == (2.0, 2) and s.std == pytest.approx(math.sqrt(2))


def test_every_metric_has_a_direction():
    for name in M.DIRECTION:
        assert callable(getattr(M, name)) and M.arrow(name) in "↑↓"
    assert M.arrow("deletion_auc") == "↓" and M.arrow("sufficiency") == "↑"


def test_bad_input_is_one_clear_error():
    with pytest.raises(InputError):
        M.area(torch.ones(8, 8))
    with pytest.raises(InputError):
        M.sufficiency(RegionProb(TOP_LEFT), ONES, torch.ones(1, 1, 4, 4))


@pytest.mark.parametrize("metric", [M.sufficiency, M.necessity, M.confidence_change, M.necessity_drop])
def test_a_mean_fill_without_the_mean_colour_is_refused_not_guessed(metric):
    clf, x = CentreModel(), ONES.expand(2, -1, -1, -1)
    with pytest.raises(InputError, match="needs the dataset mean colour"):
        metric(clf, x, box(8, 8, 2, 6, 2, 6, b=2), fill="mean")
    metric(clf, x, box(8, 8, 2, 6, 2, 6, b=2), fill="mean", mean=(0.5,))   # with the mean it runs
