"""Models that are not CNNs: token maps laid out (N, B, D), and plain modules that carry no mean colour.

``nn.TransformerEncoderLayer`` defaults to ``batch_first=False``: its output is ``(N, B, D)``, tokens first.
The tiny vision transformer below is built twice with the same weights, batch-first and sequence-first, so
both must give the same masks.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from _tiny import TAPS, TinyCNN, images, tiny_loaded
from torch import nn

from actmatch_lite._validate import InputError
from actmatch_lite.interface.widgets import threshold_mask
from actmatch_lite.method.capture import count_hooks
from actmatch_lite.method.config import ExplainConfig
from actmatch_lite.method.explainer import explain
from actmatch_lite.method.setup import resolve

PATCH = 8   # 16x16 images -> N = 4 tokens: a batch of 4 images has as many images as tokens


class TinyViT(nn.Module):
    """16x16 RGB -> four 8x8 patch tokens (dim 8) -> one encoder layer -> mean token -> 3 logits."""

    def __init__(self, batch_first: bool, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)   # the same weights whatever the layout: batch_first creates no parameter
        self.batch_first = batch_first
        self.embed = nn.Linear(3 * PATCH * PATCH, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=batch_first)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        t = x.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)          # (B, 3, 2, 2, 8, 8)
        t = self.embed(t.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2))   # (B, N, D), always batch-first
        t = self.encoder(t if self.batch_first else t.transpose(0, 1))  # (B, N, D) or (N, B, D)
        return self.head(t.mean(1 if self.batch_first else 0))


CFG = ExplainConfig(lambda_act=1.0, lambda_ce=4.0, lambda_kl=0.5, lambda_area=20.0, lambda_bin=1.0, lambda_tv=5.0,
                    lambda_rob=1.0, lambda_nec=0.0, taps=("embed", "encoder"), distances=("cosine", "std_mse"),
                    fill="zero", backgrounds=("zero", "uniform"), steps=10, lr=3e-3, soft_steps=4)


@pytest.fixture(autouse=True)
def no_fast_path():
    # The batch-first layer takes PyTorch's fused inference path where it can; the sequence-first one never
    # does. Switch it off so that both layouts compute the same numbers and the masks can be compared exactly.
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(before)


def test_sequence_first_transformer_gives_the_batch_first_masks():
    x = images(3)   # 3 images, 4 tokens: the batch size names the batch dim without doubt
    first, seq = TinyViT(batch_first=True).eval(), TinyViT(batch_first=False).eval()
    a = explain(first, x, config=CFG, progress=False)
    b = explain(seq, x, config=CFG, progress=False)
    assert torch.equal(a.mask, b.mask)
    assert torch.allclose(a.soft_mask, b.soft_mask, atol=1e-5)
    assert count_hooks(seq) == 0


def test_as_many_images_as_tokens_is_refused_with_how_to_declare_the_layout():
    seq = TinyViT(batch_first=False)   # left in training mode: it must come back so
    with pytest.raises(InputError, match=r"layer 'embed' outputs \(4, 4, 8\).*tap_batch_dims"):
        explain(seq, images(4), config=CFG, progress=False)
    assert count_hooks(seq) == 0 and seq.training and all(p.requires_grad for p in seq.parameters())


def test_declared_layout_keeps_image_0_independent_of_the_other_images():
    seq = TinyViT(batch_first=False).eval()
    cfg = dataclasses.replace(CFG, tap_batch_dims=(0, 1))   # embed is batch-first, the encoder sequence-first
    x, others = images(4, seed=0), images(3, seed=1)
    a = explain(seq, x, config=cfg, progress=False)
    b = explain(seq, torch.cat([x[:1], others]), config=cfg, progress=False)
    assert torch.equal(a.soft_mask[0], b.soft_mask[0])
    # ... and it is the batch-first model's mask (whose layout is declared too: 4 images, 4 tokens)
    first = explain(TinyViT(batch_first=True).eval(), x, config=dataclasses.replace(CFG, tap_batch_dims=(0, 0)),
                    progress=False)
    assert torch.equal(a.mask, first.mask)


def test_tap_batch_dims_must_match_the_taps():
    with pytest.raises(InputError, match="tap_batch_dims has 1 entries but taps has 2"):
        dataclasses.replace(CFG, tap_batch_dims=(1,))
    with pytest.raises(InputError, match="tap_batch_dims"):
        dataclasses.replace(CFG, tap_batch_dims=(0, -1))


# -- the "mean" fill on a plain nn.Module, which carries no mean colour
FILL_MEAN = ExplainConfig(taps=TAPS, fill="mean", lambda_rob=0.0, steps=2, lr=1e-3)


def test_mean_fill_on_a_plain_module_asks_for_the_mean_colour():
    clf = TinyCNN()
    with pytest.raises(InputError, match=r"fill='mean'.*ExplainConfig\(mean="):
        explain(clf, images(2), config=FILL_MEAN, progress=False)
    assert count_hooks(clf) == 0 and clf.training


def test_the_mean_colour_given_in_the_config_is_the_fill():
    mean = (0.2, 0.4, 0.6)
    ex = explain(TinyCNN(), images(2), config=dataclasses.replace(FILL_MEAN, mean=mean), progress=False)
    removed = ~ex.mask.expand_as(ex.explanation)
    colour = torch.tensor(mean).view(1, 3, 1, 1).expand_as(ex.explanation)
    assert removed.any() and torch.equal(ex.explanation[removed], colour[removed])


def test_noise_backgrounds_on_a_plain_module_say_which_colour_they_centre_on():
    cfg = ExplainConfig(taps=TAPS, fill="zero", backgrounds=("gaussian",), lambda_rob=1.0, steps=2)
    with pytest.warns(UserWarning, match=r"'gaussian'.*grey 0\.5.*ExplainConfig\(mean="):
        explain(TinyCNN(), images(1), config=cfg, progress=False)


def test_a_loaded_model_keeps_its_own_mean_colour_unless_the_config_gives_one():
    lm = tiny_loaded()
    assert resolve(lm, FILL_MEAN).mean == lm.mean
    assert resolve(lm, dataclasses.replace(FILL_MEAN, mean=(0.1, 0.2, 0.3))).mean == (0.1, 0.2, 0.3)
    with pytest.raises(InputError, match="mean has 1 values but tiny takes 3-channel images"):
        resolve(lm, dataclasses.replace(FILL_MEAN, mean=(0.5,)))
    with pytest.raises(InputError, match="mean must be one pixel-space value in"):
        dataclasses.replace(FILL_MEAN, mean=0.5)


def test_the_weight_explorer_cuts_with_the_config_mean_colour():
    x, soft = images(1), torch.zeros(1, 1, 16, 16)   # the mask removes every pixel
    cut = threshold_mask(TinyCNN(), x, soft, torch.tensor([0]), 0.5, "mean", (0.2, 0.4, 0.6))
    assert torch.equal(cut.explanation, torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand(1, 3, 16, 16))
