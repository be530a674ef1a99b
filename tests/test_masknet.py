"""Mask networks: straight-through estimator, sizes, and B independent networks in one call."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from actmatch_lite.method.masknet import (MaskNetSpec, MaskUNet, _BilinearUpsample, default_spec, standardise,
                                          straight_through, upsample_bilinear)


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_straight_through_forward_is_binary_and_gradient_is_identity():
    m_soft = torch.tensor([0.2, 0.5, 0.51, 0.9], requires_grad=True)
    m_st = straight_through(m_soft)
    assert m_st.tolist() == [0.0, 0.0, 1.0, 1.0]
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    (m_st * w).sum().backward()
    assert torch.equal(m_soft.grad, w)
    assert straight_through(torch.tensor([0.3]), threshold=0.25).item() == 1.0


def test_width_scales_with_input_size():
    small = [n_params(MaskUNet(c, s)) for c, s in [(1, (28, 28)), (3, (64, 64))]]
    assert all(10_000 <= n <= 100_000 for n in small), small
    assert n_params(MaskUNet(3, (224, 224))) > 10 * max(small)
    assert default_spec((224, 224)).width == 32 and default_spec((28, 28)).stride == 1


@pytest.mark.parametrize("size", [(28, 28), (30, 30), (50, 70), (64, 64)])
def test_output_shape_and_range_for_any_size(size):
    net = MaskUNet(3, size, n_nets=2)
    m = net(torch.rand(2, 3, *size))
    assert m.shape == (2, 1, *size) and (m > 0).all() and (m < 1).all()


def test_init_keep_sets_the_starting_area():
    net = MaskUNet(1, (28, 28), init_keep=0.9)
    assert net(torch.rand(4, 1, 28, 28)).mean().item() == pytest.approx(0.9, abs=0.05)


def test_batched_networks_equal_networks_built_alone_from_their_own_seeds():
    x = torch.rand(3, 3, 32, 32)
    batched = MaskUNet(3, (32, 32), n_nets=3, seed=7)
    together = batched(x)
    for i in range(3):
        alone = MaskUNet(3, (32, 32), n_nets=1, seed=7 + i)
        assert torch.allclose(alone(x[i:i + 1]), together[i:i + 1], atol=1e-6)


def test_index_runs_a_subset_of_the_networks():
    net = MaskUNet(1, (16, 16), n_nets=4, spec=MaskNetSpec(width=4, depth=1, stride=1))
    x = torch.rand(4, 1, 16, 16)
    idx = torch.tensor([1, 3])
    assert torch.allclose(net(x[idx], idx), net(x)[idx], atol=1e-6)
    with pytest.raises(ValueError, match="need a batch of 2"):
        net(x, idx)


def test_gradients_of_one_image_reach_only_its_own_network():
    net = MaskUNet(1, (16, 16), n_nets=3)
    net(torch.rand(3, 1, 16, 16))[1].sum().backward()
    for p in net.parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0
    assert net.head.weight.grad[1].abs().sum() > 0


def test_plain_mode_is_one_network_over_any_batch():
    net = MaskUNet(1, (16, 16), n_nets=1)
    x = torch.rand(5, 1, 16, 16)
    assert torch.allclose(net(x)[2:3], net(x[2:3]), atol=1e-6)


@pytest.mark.parametrize("sizes", [((32, 32), (64, 64)), ((56, 56), (224, 224)), ((5, 7), (17, 30))])
def test_gpu_upsampling_is_bilinear_forward_and_its_exact_adjoint_backward(sizes):
    """The GPU path's backward (two matrix products, no atomic adds) equals the native one, checked on the CPU."""
    (h, w), size = sizes
    z = torch.randn(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ours, ref = _BilinearUpsample.apply(z, size), F.interpolate(z, size=size, mode="bilinear", align_corners=False)
    assert torch.equal(ours, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(ours, z, g)[0], torch.autograd.grad(ref, z, g)[0],
                               rtol=0, atol=1e-12)
    assert upsample_bilinear(z, size).grad_fn.name() == ref.grad_fn.name()   # the CPU keeps torch's own kernel


def _leaky_unet_by_hand(net: MaskUNet, x: torch.Tensor) -> torch.Tensor:
    """The leaky-ReLU U-Net written out with torch's ops: the forward the shipped amortized files were trained with."""
    def conv(c, h):
        return F.conv2d(h, c.weight[0], c.bias[0], c.stride, c.kernel // 2)

    h = F.leaky_relu(conv(net.stem, standardise(x)), 0.1)
    skips = [h]
    for c in net.down:
        h = F.leaky_relu(conv(c, h), 0.1)
        skips.append(h)
    for level in reversed(range(net.spec.depth)):
        h = F.interpolate(h, size=skips[level].shape[-2:], mode="nearest")
        h = F.leaky_relu(conv(net.up[level], torch.cat([h, skips[level]], 1)), 0.1)
    z = conv(net.head, h)
    if z.shape[-2:] == x.shape[-2:]:
        return z
    return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("size", [(28, 28), (64, 64)])
def test_leaky_relu_option_is_bit_for_bit_the_hand_written_network(size):
    net = MaskUNet(1, size, activation="leaky_relu", seed=3)
    x = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net.logits(x), _leaky_unet_by_hand(net, x))
        relu = MaskUNet(1, size, seed=3)
        assert not torch.equal(relu.logits(x), net.logits(x))   # same weights, another nonlinearity
    assert relu.activation == "relu"   # the default: the per-image networks
    with pytest.raises(ValueError, match="leaky_relu"):
        MaskUNet(1, size, activation="gelu")
