"""Amortized explainer: one forward pass, save/load with checksum, warm-started refinement, determinism."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from actmatch_lite.checksums import CHECKSUMS, sha256_of
from actmatch_lite.data import make_shapes
from actmatch_lite.method import amortized, explainer, masknet, objective
from actmatch_lite.method import setup as setup_
from actmatch_lite.method.amortized import AmortizedExplainer, stack_networks, train_amortized
from actmatch_lite.method.amortized import explainer as amortized_explainer
from actmatch_lite.method.config import get_preset
from actmatch_lite.method.fill import make_fill
from actmatch_lite.method.masknet import MaskUNet
from actmatch_lite.models import ChecksumError, load_model
from actmatch_lite.models import amortized as shipped
from actmatch_lite.models.amortized import RECIPES, recipe, recipe_threads
from actmatch_lite.paths import data_dir

TRAIN_SEED, TEST_SEED = 1, 4242


@pytest.fixture(scope="module")
def model():
    return load_model("shapes-cnn", device="cpu")


@pytest.fixture(scope="module")
def tiny(model):
    """Two Adam steps on 16 images: enough to exercise every path, not to explain well."""
    return train_amortized(model, make_shapes(16, seed=TRAIN_SEED).x, epochs=1, batch_size=8, seed=0, progress=False)


def test_single_forward_pass_shapes_and_dtypes(tiny):
    x = make_shapes(3, seed=TEST_SEED).x
    ex = tiny.explain(x)
    assert isinstance(ex, explainer.Explanation)
    assert ex.mask.shape == ex.soft_mask.shape == (3, 1, 64, 64) and ex.mask.dtype == torch.bool
    assert ex.soft_mask.dtype == torch.float32 and ex.explanation.shape == x.shape
    assert ex.target.dtype == torch.long and ex.prob_before.shape == ex.prob_after.shape == (3,)
    assert ex.steps_run.tolist() == [0, 0, 0]


@pytest.mark.parametrize("keep", ["final", "last_feasible", "smallest_feasible"])
def test_keep_rule_picks_feasible_candidates(model, tiny, keep):
    x = make_shapes(4, seed=TEST_SEED).x
    amz = AmortizedExplainer(model, tiny.mask_net, dataclasses.replace(tiny.config, keep=keep))
    ex = amz.explain(x)
    threshold = ex.soft_mask > amz.config.threshold
    with torch.no_grad():
        kept = model.clf(ex.explanation).argmax(1) == ex.target
    same = (ex.mask == threshold).flatten(1).all(1)
    if keep == "final":
        assert same.all()
    else:   # a changed mask is one that keeps the label; an unchanged one may be the fallback
        assert kept[~same].all()
    if keep == "last_feasible":   # repair only grows the threshold mask (a larger top-k set contains it)
        assert (ex.mask | ~threshold).all()


def _every_candidate(setup, x, fill, m_soft, y):
    """The keep rule by brute force: test every candidate of every image, then pick by the rule."""
    cfg, hw = setup.config, m_soft[0].numel()
    thr = m_soft > cfg.threshold
    order = m_soft.flatten(1).argsort(1, descending=True)
    out = thr.clone()
    for i in range(len(x)):
        cands = [thr[i]]
        for a in amortized.AREA_GRID:
            top = torch.zeros(hw, dtype=torch.bool)
            top[order[i, :max(1, round(a * hw))]] = True
            cands.append(top.view_as(thr[i]))
        with torch.no_grad():
            kept = setup.model(torch.stack([c * x[i] + ~c * fill[i] for c in cands])).argmax(1) == y[i]
        ok = [bool(k) and bool(c.any()) for k, c in zip(kept, cands)]
        areas = [int(c.sum()) for c in cands]
        if cfg.keep == "last_feasible":
            pick = 0 if ok[0] else min((j for j in range(1, len(cands)) if ok[j] and areas[j] > areas[0]),
                                      key=lambda j: areas[j], default=0)
        else:
            pick = min((j for j in range(len(cands)) if ok[j]), key=lambda j: (areas[j], j), default=0)
        out[i] = cands[pick]
    return out


@pytest.mark.parametrize("keep", ["last_feasible", "smallest_feasible"])
def test_early_exit_search_picks_what_testing_every_candidate_picks(model, keep):
    """select_masks stops testing an image at its first feasible candidate: the choice must not change."""
    d = make_shapes(12, seed=TEST_SEED)
    gen = torch.Generator().manual_seed(0)
    # soft masks from the object (some fully below the threshold: an empty threshold mask) plus smooth noise
    blob = torch.nn.functional.avg_pool2d(torch.rand(12, 1, 64, 64, generator=gen), 9, 1, 4)
    m_soft = (0.6 * d.masks.float() + blob) * torch.linspace(0.3, 1.2, 12).view(-1, 1, 1, 1)
    setup = setup_.resolve(model, dataclasses.replace(get_preset(model.preset), keep=keep))
    fill = make_fill(d.x, setup.config.fill, mean=model.mean)
    with torch.no_grad():
        y = model.clf(d.x).argmax(1)
    assert (~(m_soft > 0.5).flatten(1).any(1)).any()          # the case of an empty threshold mask is covered
    m, logits = amortized.select_masks(setup, d.x, fill, m_soft, y)
    assert torch.equal(m, _every_candidate(setup, d.x, fill, m_soft, y))
    with torch.no_grad():   # the returned logits are those of the returned masks
        torch.testing.assert_close(logits, model.clf(d.x * m + fill * ~m))


def test_an_empty_threshold_mask_is_not_feasible_even_when_the_fill_alone_keeps_the_class(model, tiny):
    x = make_shapes(3, seed=TEST_SEED).x
    setup = setup_.resolve(model, dataclasses.replace(tiny.config, keep="smallest_feasible"))
    fill = make_fill(x, setup.config.fill, mean=model.mean)
    with torch.no_grad():
        y = model.clf(fill).argmax(1)            # the class of the fill alone, so every candidate keeps it
    m, _ = amortized.select_masks(setup, x, fill, torch.full((3, 1, 64, 64), 0.1), y)
    assert m.flatten(1).any(1).all()             # the smallest top-k candidate, never the empty threshold mask


def test_vacuous_sufficiency_is_flagged_as_in_the_per_image_regime(model, tiny):
    """shapes-cnn calls the fill alone a triangle: the label kept by a triangle's mask proves nothing."""
    x = make_shapes(12, seed=TEST_SEED).x
    ex = tiny.explain(x)
    with torch.no_grad():
        fill_class = model.clf(make_fill(x, tiny.config.fill, mean=model.mean)).argmax(1)
        kept = model.clf(ex.explanation).argmax(1) == ex.target
    expected = {i for i in range(len(x)) if fill_class[i] == ex.target[i] and kept[i]}
    assert expected                                   # some triangle is kept on these images
    assert {int(w.split(":")[0].split()[1]) for w in ex.warnings if "vacuous" in w} == expected


def test_one_pass_draws_no_backgrounds_even_with_the_sufficiency_term(model, tiny, monkeypatch):
    """The keep rule checks the label on e only: random backgrounds would triple the cost of one explanation."""
    amz = AmortizedExplainer(model, tiny.mask_net, dataclasses.replace(tiny.config, lambda_rob=1.0, keep="smallest_feasible"))

    def fail(*args, **kwargs):
        raise AssertionError("backgrounds drawn")

    monkeypatch.setattr(objective, "draw_backgrounds", fail)
    assert amz.explain(make_shapes(2, seed=TEST_SEED).x).mask.shape == (2, 1, 64, 64)
    with pytest.raises(AssertionError, match="backgrounds drawn"):   # refinement trains on them, as explain does
        amz.explain(make_shapes(2, seed=TEST_SEED).x, refine_steps=1)


def test_save_load_roundtrip_and_checksum(model, tiny, tmp_path):
    path = tmp_path / "amz.pt"
    sha = tiny.save(path)
    assert sha == sha256_of(path)
    back = AmortizedExplainer.load(path, model, sha256=sha)
    x = make_shapes(2, seed=TEST_SEED).x
    assert torch.equal(back.explain(x).soft_mask, tiny.explain(x).soft_mask)
    assert back.config == tiny.config and back.meta == tiny.meta
    with pytest.raises(ChecksumError):
        AmortizedExplainer.load(path, model, sha256="0" * 64)
    with pytest.raises(ValueError, match="fmnist-cnn"):
        AmortizedExplainer.load(path, load_model("fmnist-cnn", device="cpu", pretrained=False))


def test_training_is_deterministic(model, tiny):
    again = train_amortized(model, make_shapes(16, seed=TRAIN_SEED).x, epochs=1, batch_size=8, seed=0, progress=False)
    for (k, a), b in zip(tiny.mask_net.state_dict().items(), again.mask_net.state_dict().values()):
        assert torch.equal(a, b), k


def test_stacked_networks_compute_what_the_single_one_does(tiny):
    x = make_shapes(3, seed=TEST_SEED).x
    stacked = stack_networks(tiny.mask_net, 3)
    with torch.no_grad():
        torch.testing.assert_close(stacked(x), tiny.mask_net(x))


def test_refinement_never_worsens_the_objective(model, tiny):
    # No random backgrounds: the objective is deterministic, so "best seen" can be checked exactly.
    cfg = dataclasses.replace(get_preset(model.preset), lambda_rob=0.0)
    amz = AmortizedExplainer(model, tiny.mask_net, cfg)
    x = make_shapes(1, seed=TEST_SEED).x
    setup = setup_.resolve(model, cfg)
    logits_x, acts_x = setup_.reference_pass(setup, x)
    y, fill = logits_x.argmax(1), make_fill(x, cfg.fill, mean=model.mean)

    def loss(m_soft):
        with torch.no_grad():
            return objective.objective(setup, x, fill, logits_x, acts_x, y, m_soft, [None])[0]

    before, refined = amz.explain(x), amz.explain(x, refine_steps=4)
    assert (loss(refined.soft_mask) <= loss(before.soft_mask) + 1e-6).all()
    assert refined.steps_run.tolist() == [4] and len(refined.history["total"]) == 5


def test_bad_arguments_fail_clearly(model, tiny):
    with pytest.raises(ValueError, match="refine_steps"):
        tiny.explain(make_shapes(1, seed=TEST_SEED).x, refine_steps=-1)
    with pytest.raises(ValueError, match="n_nets"):
        stack_networks(MaskUNet(3, (64, 64), n_nets=2), 4)


@pytest.mark.parametrize("name", ["shapes-cnn", "fmnist-cnn"])
def test_shipped_amortized_explainers_load(name):
    file = shipped.shipped_file(name)
    if not (data_dir() / file).exists() or not CHECKSUMS.get(file):
        pytest.skip(f"{file} is not shipped yet")
    amz = shipped.load_amortized(name)
    x = torch.rand(2, amz.model.channels, *amz.model.input_size)
    assert amz.explain(x).mask.shape == (2, 1, *amz.model.input_size)


def test_shipped_explainer_must_match_the_classifier_weights(model, monkeypatch):
    if not CHECKSUMS.get(shipped.shipped_file(model.name)):
        pytest.skip("amortized_shapes.pt is not shipped yet")
    monkeypatch.setattr(shipped, "classifier_sha256", lambda name: "retrained")
    with pytest.raises(ChecksumError, match="retrain"):
        shipped.load_amortized(model)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_no_mask_network_has_its_own_forward():
    """A copy of MaskUNet.logits drifts (it once kept F.interpolate, whose CUDA backward is not deterministic)."""
    overriding = [sub for sub in _subclasses(masknet.MaskUNet) if {"logits", "forward"} & set(vars(sub))]
    assert not overriding, overriding


def test_amortized_network_and_refinement_upsample_through_masknet(model, tiny, monkeypatch):
    """shapes' mask grid is half the image: every forward pass, refinement's included, must use the deterministic
    upsampling of masknet (checked on the CPU, where it forwards to torch's own kernel)."""
    calls = []

    def counted(z, size):
        calls.append(z.requires_grad)
        return masknet.F.interpolate(z, size=size, mode="bilinear", align_corners=False)

    monkeypatch.setattr(masknet, "upsample_bilinear", counted)
    assert type(tiny.mask_net) is masknet.MaskUNet and tiny.mask_net.activation == amortized_explainer.ACTIVATION
    x = make_shapes(2, seed=TEST_SEED).x
    tiny.explain(x)
    tiny.explain(x, refine_steps=2)
    assert calls == [False, True, True, True]   # one pass; then steps 0, 1, 2 of the stacked networks, with gradients
    loaded = shipped.load_amortized(model)
    assert type(loaded.mask_net) is masknet.MaskUNet and loaded.mask_net.activation == "leaky_relu"


def test_recipes_name_their_models_and_restore_the_thread_settings():
    with pytest.raises(ValueError, match="shapes-cnn"):
        recipe("resnet")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="inside"), recipe_threads(RECIPES["shapes-cnn"], deterministic=True):
        assert torch.get_num_threads() == RECIPES["shapes-cnn"].threads
        assert torch.are_deterministic_algorithms_enabled()
        raise RuntimeError("inside the block")
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, det)
