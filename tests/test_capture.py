"""Activation capture: exact values on tiny hand-built models, in-place ReLUs, reuse, tuples, tokens, cleanup."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.method.capture import capture_activations, count_hooks, find_batch_dim


class Doubler(nn.Module):
    """Returns a tuple (2x, x): capture must take the first tensor."""

    def forward(self, x):
        return 2 * x, x


class Reuser(nn.Module):
    """One ReLU module called twice in a forward pass (EfficientNet-Lite0 style)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2, bias=False)
        self.act = nn.ReLU(inplace=True)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))

    def forward(self, x):
        return self.act(self.lin(self.act(x)))


def conv_relu_inplace() -> nn.Sequential:
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(-1.0)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def test_in_place_relu_cannot_corrupt_the_captured_conv_output():
    model = conv_relu_inplace()
    x = torch.tensor([[[[1.0, -2.0]]]])
    with capture_activations(model, ["0", "1"]) as acts:
        out = model(x)
    assert torch.equal(acts["0"][0], torch.tensor([[[[-1.0, 2.0]]]]))   # pre-ReLU values survive
    assert torch.equal(acts["1"][0], torch.tensor([[[[0.0, 2.0]]]]))
    assert torch.equal(out, acts["1"][0])
    assert model[1].inplace is True and count_hooks(model) == 0


def test_hooked_relu_runs_out_of_place_and_its_flag_is_restored():
    model = conv_relu_inplace()
    with capture_activations(model, ["1"]):
        assert model[1].inplace is False
    assert model[1].inplace is True


def test_reused_module_records_every_call_in_order():
    model = Reuser()
    x = torch.tensor([[-1.0, 3.0]])
    with capture_activations(model, ["act"]) as acts:
        model(x)
    assert len(acts["act"]) == 2
    assert torch.equal(acts["act"][0], torch.tensor([[0.0, 3.0]]))
    assert torch.equal(acts["act"][1], torch.tensor([[0.0, 0.0]]))   # relu(lin([0, 3])) = relu([0, -3])


def test_tuple_outputs_take_the_first_tensor_and_tokens_keep_their_shape():
    model = nn.Sequential(nn.Identity(), Doubler())
    tokens = torch.arange(12.0).view(1, 4, 3)   # (B, N, C)
    with capture_activations(model, ["1", "0"]) as acts:
        model(tokens)
    assert torch.equal(acts["1"][0], 2 * tokens)
    assert acts["0"][0].shape == (1, 4, 3)


def test_graph_is_kept_so_gradients_reach_the_input():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    x = torch.ones(1, 2, requires_grad=True)
    with capture_activations(model, ["0"]) as acts:
        model(x)
    acts["0"][0].sum().backward()
    assert x.grad is not None and torch.equal(x.grad, model[0].weight.sum(0, keepdim=True).detach())


def test_hooks_removed_and_exception_propagates_when_forward_raises():
    model = conv_relu_inplace()
    with pytest.raises(RuntimeError):
        with capture_activations(model, ["0", "1"]):
            model(torch.zeros(1, 3, 2, 2))   # wrong channel count: conv raises
    assert count_hooks(model) == 0 and model[1].inplace is True


def test_exception_inside_the_block_is_not_swallowed():
    model = conv_relu_inplace()
    with pytest.raises(KeyError):
        with capture_activations(model, ["1"]):
            raise KeyError("boom")
    assert count_hooks(model) == 0


def test_unknown_layer_lists_close_matches_first():
    model = nn.Sequential()
    model.add_module("layer1", nn.ReLU())
    model.add_module("layer2", nn.ReLU())
    model.add_module("head", nn.Identity())
    with pytest.raises(InputError, match=r"unknown layer 'layer3'") as info:
        with capture_activations(model, ["layer3"]):
            pass
    listed = str(info.value).split("closest first: ")[1]
    assert listed.index("head") > max(listed.index("layer1"), listed.index("layer2"))
    assert count_hooks(model) == 0


def test_count_hooks_sees_every_kind():
    model = nn.Sequential(nn.ReLU())
    handles = [model[0].register_forward_hook(lambda *a: None), model.register_forward_pre_hook(lambda *a: None),
               model[0].register_full_backward_hook(lambda *a: None)]
    assert count_hooks(model) == 3
    for h in handles:
        h.remove()
    assert count_hooks(model) == 0


class SequenceFirst(nn.Module):
    """Tokens (B, N, C) in, (N, B, C) out: the layout of nn.TransformerEncoderLayer(batch_first=False)."""

    def forward(self, x):
        return x.transpose(0, 1)


def test_sequence_first_tokens_are_recorded_batch_first():
    model = nn.Sequential(SequenceFirst())
    tokens = torch.arange(24.0).view(2, 3, 4)   # B = 2 images, N = 3 tokens
    with capture_activations(model, ["0"]) as acts:
        out = model(tokens)
    assert out.shape == (3, 2, 4) and torch.equal(acts["0"][0], tokens)


def test_as_many_images_as_tokens_needs_a_declared_batch_dim():
    model = nn.Sequential(SequenceFirst())
    tokens = torch.arange(16.0).view(2, 2, 4)   # B = N = 2: the shape cannot say which dim holds the images
    with pytest.raises(InputError, match=r"layer '0' outputs \(2, 2, 4\).*batch_dims=\{'0': 1\}"):
        with capture_activations(model, ["0"]):
            model(tokens)
    assert count_hooks(model) == 0
    with capture_activations(model, ["0"], batch_dims={"0": 1}) as acts:
        model(tokens)
    assert torch.equal(acts["0"][0], tokens)
    with pytest.raises(InputError, match="batch_dims names layers that are not captured: \\['1'\\]"):
        with capture_activations(model, ["0"], batch_dims={"1": 1}):
            pass


@pytest.mark.parametrize("shape, batch, declared, dim", [
    ((5, 4, 3, 3), 5, None, 0),   # conv map
    ((5, 7), 5, None, 0),         # vector
    ((5, 7, 3), 5, None, 0),      # tokens (B, N, C)
    ((7, 5, 3), 5, None, 1),      # tokens (N, B, C)
    ((1, 1, 3), 1, None, 0),      # one image, one token: both layouts are the same tensor
    ((5, 5, 3), 5, 1, 1),         # ambiguous, declared
    ((7, 5, 3), None, None, 0),   # batch size unknown: dim 0, as before
])
def test_find_batch_dim(shape, batch, declared, dim):
    assert find_batch_dim(shape, batch, declared) == dim


@pytest.mark.parametrize("shape, batch, declared, message", [
    ((5, 5, 3), 5, None, "cannot be told apart"),
    ((6, 7, 5), 5, None, "neither dim 0 nor"),
    ((4, 5, 3, 3), 5, None, "neither dim 0 nor"),   # a conv map keeps its images in dim 0
    ((7, 5, 3), 5, 0, "declared batch dim 0 does not have the batch size 5"),
])
def test_find_batch_dim_refuses_what_it_cannot_place(shape, batch, declared, message):
    with pytest.raises(InputError, match=message):
        find_batch_dim(shape, batch, declared)
