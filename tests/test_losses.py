"""Every loss on hand-built tensors with known answers, gradchecks, and per-image independence."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from actmatch_lite.method import losses
from actmatch_lite.method.losses.activation import layer_distance
from actmatch_lite.method.masknet import straight_through


def checkerboard(h: int = 6, w: int = 6) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i + j) % 2).float().view(1, 1, h, w)


def half_mask(h: int = 4, w: int = 8) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w)
    m[..., : w // 2] = 1
    return m


# -- priors
def test_tv_of_a_checkerboard_is_two_with_four_and_eight_neighbours():
    m = checkerboard()
    assert losses.tv_loss(m, 4).item() == pytest.approx(2.0)
    assert losses.tv_loss(m, 8).item() == pytest.approx(2.0)   # diagonal neighbours are equal on a checkerboard


def test_tv_of_a_vertical_split():
    m, w = half_mask(4, 8), 8
    assert losses.tv_loss(m, 4).item() == pytest.approx(1 / (w - 1))
    assert losses.tv_loss(m, 8).item() == pytest.approx((1 + math.sqrt(2)) / (w - 1))


def test_tv_of_a_constant_mask_is_zero_and_neighbours_are_checked():
    assert losses.tv_loss(torch.full((2, 1, 5, 5), 0.3)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="4 or 8"):
        losses.tv_loss(torch.zeros(1, 1, 3, 3), 6)


def test_area_and_binarisation_known_values():
    assert losses.area_loss(half_mask()).item() == pytest.approx(0.5)
    assert losses.binarisation_loss(torch.full((1, 1, 3, 3), 0.5)).item() == pytest.approx(0.25)   # its maximum
    assert losses.binarisation_loss(half_mask()).item() == 0.0
    m = torch.rand(1, 1, 7, 7)
    assert losses.binarisation_loss(m).item() <= 0.25


def test_area_excess_is_a_hinge_at_the_target():
    m = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.3)])
    assert losses.area_excess_loss(m, 0.2).tolist() == pytest.approx([0.0, 0.1])


# -- activation matching
def test_cosine_distance_identical_zero_opposite_two():
    a = torch.randn(2, 5, 3, 3)
    assert losses.cosine_distance(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert losses.cosine_distance(a, -a).tolist() == pytest.approx([2.0, 2.0], abs=1e-6)


def test_cosine_distance_of_zero_vectors_counts_them_as_identical_with_finite_gradient():
    a = torch.zeros(1, 4, 2, 2)
    b = torch.zeros(1, 4, 2, 2, requires_grad=True)
    d = losses.cosine_distance(a, b)
    d.sum().backward()
    assert d.item() == 0.0 and torch.isfinite(b.grad).all()
    one_on = torch.zeros(1, 4, 1, 1)
    one_on[0, 0] = 1.0
    assert losses.cosine_distance(one_on, torch.zeros(1, 4, 1, 1)).item() == 1.0   # orthogonal to nothing


def test_std_mse_is_scale_free_and_zero_for_identical():
    a = torch.rand(2, 3, 4, 4)
    assert losses.std_mse_distance(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-10)
    assert losses.std_mse_distance(a, 5 * a + 2).tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    z = losses.activation.standardise_channels(a)
    assert z.mean(1).abs().max() < 1e-5 and (z.pow(2).mean(1) - 1).abs().max() < 1e-3


def test_std_mse_has_finite_gradient_on_dead_channels_and_refuses_vectors():
    b = torch.zeros(1, 2, 3, 3, requires_grad=True)
    losses.std_mse_distance(torch.rand(1, 2, 3, 3), b).sum().backward()
    assert torch.isfinite(b.grad).all()
    with pytest.raises(ValueError, match="at least 2 locations"):
        losses.std_mse_distance(torch.rand(2, 5), torch.rand(2, 5))


def test_mse_distance_known_value():
    assert losses.mse_distance(torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)).item() == 1.0


def test_activation_matching_is_the_weighted_sum_and_averages_repeated_calls():
    a = {"l1": torch.zeros(1, 2, 2, 2), "l2": [torch.zeros(1, 3), torch.zeros(1, 3)]}
    e = {"l1": torch.ones(1, 2, 2, 2), "l2": [torch.ones(1, 3), torch.full((1, 3), 3.0)]}
    loss = losses.activation_matching_loss(a, e, {"l1": 2.0, "l2": 0.5}, {"l1": "mse", "l2": "mse"})
    assert loss.item() == pytest.approx(2.0 * 1.0 + 0.5 * (1.0 + 9.0) / 2)
    same = losses.activation_matching_loss(a, e, [2.0, 0.5], ["mse", "mse"])
    assert same.item() == loss.item()


def test_default_distances_follow_the_authors_rule():
    assert losses.default_distances(5) == ("cosine", "cosine", "std_mse", "std_mse", "std_mse")


# -- fidelity
def test_cross_entropy_is_minus_log_softmax():
    z, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2])
    expected = -torch.log_softmax(z, 1)[[0, 1], [0, 2]]
    assert torch.allclose(losses.cross_entropy_loss(z, y), expected)


def test_kl_zero_for_identical_logits_and_t_squared_scaling():
    z = torch.randn(3, 5)
    assert losses.kl_loss(z, z, 2.0).abs().max() < 1e-6
    zx, ze, t = torch.randn(2, 4), torch.randn(2, 4), 3.0
    p, q = F.softmax(zx / t, 1), F.softmax(ze / t, 1)
    assert torch.allclose(losses.kl_loss(zx, ze, t), t * t * (p * (p.log() - q.log())).sum(1), atol=1e-6)


# -- abductive
def test_robustness_ce_is_the_mean_over_backgrounds_and_kl_form_needs_logits_x():
    logits_bg = torch.randn(3, 2, 4)
    y = torch.tensor([1, 3])
    expected = torch.stack([F.cross_entropy(logits_bg[k], y, reduction="none") for k in range(3)]).mean(0)
    assert torch.allclose(losses.robustness_loss(logits_bg, y), expected)
    zx = torch.randn(2, 4)
    kl = torch.stack([losses.kl_loss(zx, logits_bg[k], 2.0) for k in range(3)]).mean(0)
    assert torch.allclose(losses.robustness_loss(logits_bg, y, form="kl", logits_x=zx), kl)
    with pytest.raises(ValueError, match="logits_x"):
        losses.robustness_loss(logits_bg, y, form="kl")


def test_necessity_hinge_on_logits_and_probabilities():
    zx = torch.tensor([[3.0, 0.0], [3.0, 0.0]])
    zc = torch.tensor([[2.5, 0.0], [0.0, 0.0]])   # drops of 0.5 and 3
    y = torch.tensor([0, 0])
    assert losses.necessity_loss(zx, zc, y, margin=1.0).tolist() == pytest.approx([0.5, 0.0])
    drop = zx.softmax(1)[:, 0] - zc.softmax(1)[:, 0]
    assert torch.allclose(losses.necessity_loss(zx, zc, y, margin=0.5, form="prob"), (0.5 - drop).clamp_min(0))


def test_composites_and_complement():
    x, m = torch.ones(2, 3, 2, 2), half_mask(2, 2).expand(2, 1, 2, 2)
    r = torch.zeros(4, 2, 3, 2, 2)
    comp = losses.background_composites(x, m, r)
    assert comp.shape == (4, 2, 3, 2, 2) and torch.equal(comp[0, 0, 0], m[0, 0])
    assert torch.equal(losses.complement(x, m, torch.zeros_like(x))[0, 0], 1 - m[0, 0])


def test_robustness_through_straight_through_mask_trains_the_mask_unlike_the_hard_mask():
    """The authors' bug: with the hard mask the term has no gradient w.r.t. the mask network's output."""
    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x, r = torch.rand(1, 3, 4, 4), torch.rand(2, 1, 3, 4, 4)
    m_soft = torch.rand(1, 1, 4, 4, requires_grad=True)
    y = torch.tensor([0])

    def rob(m):
        return losses.robustness_loss(clf(losses.background_composites(x, m, r).flatten(0, 1)).view(2, 1, 3), y)

    hard = (m_soft > 0.5).float()
    assert not hard.requires_grad   # the authors' version: nothing flows back
    rob(straight_through(m_soft)).sum().backward()
    assert m_soft.grad is not None and m_soft.grad.abs().sum() > 0


# -- numerics and independence
def test_gradcheck_on_tiny_double_inputs():
    torch.manual_seed(0)
    a = torch.randn(2, 3, 2, 2, dtype=torch.double, requires_grad=True)
    b = torch.randn(2, 3, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(losses.cosine_distance, (a, b))
    assert torch.autograd.gradcheck(losses.std_mse_distance, (a, b))
    zx = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    ze = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: losses.kl_loss(p, q, 2.0), (zx, ze))
    m = torch.rand(2, 1, 4, 4, dtype=torch.double, requires_grad=True)   # distinct values: |.| is smooth there
    assert torch.autograd.gradcheck(lambda t: losses.tv_loss(t, 8), (m,))
    assert torch.autograd.gradcheck(losses.binarisation_loss, (m,))


def test_every_loss_is_per_image_and_independent_of_the_rest_of_the_batch():
    torch.manual_seed(1)
    m, a, b = torch.rand(3, 1, 5, 5), torch.rand(3, 4, 5, 5), torch.rand(3, 4, 5, 5)
    zx, ze, y = torch.randn(3, 6), torch.randn(3, 6), torch.tensor([0, 2, 5])
    fns = {
        "area": lambda s: losses.area_loss(m[s]), "bin": lambda s: losses.binarisation_loss(m[s]),
        "tv": lambda s: losses.tv_loss(m[s]), "cos": lambda s: losses.cosine_distance(a[s], b[s]),
        "std": lambda s: losses.std_mse_distance(a[s], b[s]), "ce": lambda s: losses.cross_entropy_loss(ze[s], y[s]),
        "kl": lambda s: losses.kl_loss(zx[s], ze[s]), "nec": lambda s: losses.necessity_loss(zx[s], ze[s], y[s]),
        "rob": lambda s: losses.robustness_loss(torch.stack([ze, zx])[:, s], y[s]),
    }
    for name, fn in fns.items():
        full = fn(slice(None))
        assert full.shape == (3,), name
        assert torch.allclose(fn(slice(1, 2)), full[1:2], atol=1e-6), name


def test_activations_of_different_shapes_name_the_batch_first_layout():
    with pytest.raises(ValueError, match=r"\(3, 4, 8\) vs \(4, 3, 8\).*batch-first"):
        layer_distance(torch.zeros(3, 4, 8), torch.zeros(4, 3, 8), "cosine")
