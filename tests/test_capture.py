"""Activation capture: exact values on tiny hand-built models, in-place ReLUs, reuse, tuples, tokens, cleanup."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.capture import capture_activations, count_hooks


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
