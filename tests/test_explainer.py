"""explain(): output contract, determinism, batch independence, early stopping, real-model smoke test."""
from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from _tiny import TAPS, TinyCNN, images, tiny_loaded
from torch import nn
from tqdm.auto import tqdm

from actmatch_lite.method.capture import count_hooks
from actmatch_lite.method.config import PRESETS, ExplainConfig, get_preset
from actmatch_lite.method.explainer import Explanation, explain
from actmatch_lite.method.fill import make_fill
from actmatch_lite.method.objective import fill_kept
from actmatch_lite.method.setup import resolve

FAST = ExplainConfig(lambda_act=1.0, lambda_ce=4.0, lambda_kl=0.5, lambda_area=20.0, lambda_bin=1.0,
                     lambda_tv=5.0, lambda_rob=2.0, lambda_nec=0.5, taps=TAPS, fill="zero",
                     backgrounds=("zero", "gaussian", "uniform"), steps=12, lr=3e-3, soft_steps=4)


def test_output_contract():
    x = images(3)
    ex = explain(TinyCNN(), x, config=FAST, progress=False)
    assert isinstance(ex, Explanation)
    assert ex.mask.shape == (3, 1, 16, 16) and ex.mask.dtype == torch.bool
    assert ex.soft_mask.shape == (3, 1, 16, 16) and ex.explanation.shape == x.shape
    assert torch.equal(ex.mask, ex.soft_mask > FAST.threshold)
    assert torch.allclose(ex.explanation, x * ex.mask)   # zero fill
    assert ex.target.shape == ex.prob_before.shape == ex.prob_after.shape == ex.steps_run.shape == (3,)
    assert set(ex.history) == {"act", "ce", "kl", "area", "bin", "tv", "rob", "nec", "total", "hard_area", "kept"}
    assert all(len(v) == FAST.steps for v in ex.history.values())
    assert ex.steps_run.tolist() == [FAST.steps] * 3 and ex.config is FAST and ex.seconds > 0
    assert ex.area.shape == (3,)


def test_target_defaults_to_the_prediction_and_can_be_given():
    clf, x = TinyCNN().eval(), images(2)
    with torch.no_grad():
        pred = clf(x).argmax(1)
    cfg = dataclasses.replace(FAST, steps=2)
    assert torch.equal(explain(clf, x, config=cfg, progress=False).target, pred)
    assert explain(clf, x, config=cfg, target=2, progress=False).target.tolist() == [2, 2]
    assert explain(clf, x, config=cfg, target=torch.tensor([0, 1]), progress=False).target.tolist() == [0, 1]


def test_label_kept_is_the_top1_of_the_explanation_not_a_probability_threshold():
    clf, x = TinyCNN().eval(), images(3)
    ex = explain(clf, x, config=dataclasses.replace(FAST, steps=2), target=torch.tensor([0, 1, 2]), progress=False)
    with torch.no_grad():
        top1 = clf(ex.explanation).argmax(1)
    assert ex.label_kept.dtype == torch.bool and torch.equal(ex.label_kept, top1 == ex.target)


def test_two_runs_with_one_seed_are_identical_and_seeds_matter():
    x = images(2)
    a = explain(TinyCNN(), x, config=FAST, seed=3, progress=False)
    b = explain(TinyCNN(), x, config=FAST, seed=3, progress=False)
    c = explain(TinyCNN(), x, config=FAST, seed=4, progress=False)
    assert torch.equal(a.soft_mask, b.soft_mask) and a.history == b.history
    assert not torch.equal(a.soft_mask, c.soft_mask)


def test_images_do_not_leak_into_each_other():
    """Image 2 alone or in a batch: the same start and gradients up to rounding (bit for bit is not promised:
    CPU kernels round differently by batch size, and longer training amplifies it; see the explainer docstring)."""
    x, seed = images(3), 10
    batch = explain(TinyCNN(), x, config=FAST, seed=seed, progress=False)
    alone = explain(TinyCNN(), x[2:3], config=FAST, seed=seed + 2, progress=False)
    assert torch.allclose(alone.soft_mask, batch.soft_mask[2:3], atol=1e-4)


def test_early_stop_is_per_image_and_keeps_the_stopped_mask():
    x = images(3)
    cfg = dataclasses.replace(FAST, steps=40, patience=2, stable_iou=0.9, lambda_area=0.0, lambda_tv=0.0,
                              lambda_rob=0.0, lambda_nec=0.0)
    ex = explain(TinyCNN(), x, config=cfg, seed=1, progress=False)
    assert (ex.steps_run < 40).any()
    i = int(ex.steps_run.argmin())
    alone = explain(TinyCNN(), x[i:i + 1], config=cfg, seed=1 + i, progress=False)
    assert alone.steps_run.item() == ex.steps_run[i].item()
    assert torch.allclose(alone.soft_mask, ex.soft_mask[i:i + 1], atol=1e-4)


def test_loaded_model_supplies_taps_mean_and_preset_and_a_preset_name_works():
    lm, x = tiny_loaded(), images(2)
    cfg = dataclasses.replace(get_preset("shapes"), steps=3, soft_steps=1)
    ex = explain(lm, x, config=cfg, progress=False)
    assert ex.mask.shape == (2, 1, 16, 16) and "act" in ex.history
    assert count_hooks(lm.clf) == 0
    setup = resolve(lm, "fmnist")
    assert setup.config is PRESETS["fmnist"] and setup.taps == lm.taps and setup.tap_weights == lm.tap_weights
    assert resolve(lm, None).config is PRESETS[lm.preset] and setup.distances == ("cosine", "cosine")


def test_collapsed_masks_are_reported():
    cfg = dataclasses.replace(FAST, lambda_area=1e4, lambda_ce=0.0, lambda_kl=0.0, lambda_act=0.0,
                              lambda_rob=0.0, lambda_nec=0.0, lr=1e-1, steps=8, soft_steps=0)
    ex = explain(TinyCNN(), images(2), config=cfg, progress=False)
    assert ex.area.max() == 0 and any("empty mask" in w for w in ex.warnings)


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x.mean((2, 3))) * float("nan")


def test_nan_loss_raises_a_clear_error():
    cfg = dataclasses.replace(FAST, lambda_act=0.0, taps=None)
    with pytest.raises(FloatingPointError, match="NaN or inf at step 0"):
        explain(NaNModel(), images(1), config=cfg, progress=False)


def test_presets_are_valid_and_paper_preset_has_the_authors_values():
    assert {"shapes", "fmnist", "imagenet", "paper-resnet18"} <= set(PRESETS)
    p = PRESETS["paper-resnet18"]
    assert (p.lr, p.steps, p.lambda_act, p.lambda_ce, p.lambda_kl, p.lambda_area, p.lambda_bin, p.lambda_tv,
            p.lambda_rob, p.temperature, p.tv_neighbours, p.fill) == (5e-5, 880, 10, 15, 5, 100, 1, 500, 100, 2.0, 8,
                                                                       "mean")
    assert p.area_target is None and p.soft_steps == 0 and p.patience is None and p.distances is None


@pytest.mark.slow
def test_shapes_cnn_explanations_keep_the_label():
    pytest.importorskip("skimage")
    from actmatch_lite.data.shapes import make_shapes
    from actmatch_lite.models.registry import load_model
    try:
        lm = load_model("shapes-cnn", device="cpu")
    except FileNotFoundError:
        pytest.skip("shapes-cnn weights not shipped yet")
    d = make_shapes(4, seed=4321)
    ex = explain(lm, d.x, seed=0, progress=False)
    with torch.no_grad():
        kept = lm.clf(ex.explanation).argmax(1) == ex.target
    assert kept.all() and (ex.area > 0).all() and (ex.area < 0.5).all()


@pytest.mark.slow
def test_the_shapes_preset_returns_a_necessary_mask_when_it_can_and_a_sufficient_one_when_it_cannot():
    """Image 30 of make_shapes(64, seed=2024) (explainer seed 30) met sufficiency at the end of the warm-up with a
    mask whose removal kept the label; the necessity test in constraints_met sends it on to a necessary mask.
    Image 23 never reaches one in 130 steps and falls back to a sufficient mask (tier 1), not to its last mask."""
    from actmatch_lite.data.shapes import make_shapes
    from actmatch_lite.evaluation import metrics
    from actmatch_lite.models.registry import load_model
    lm = load_model("shapes-cnn", device="cpu")
    d = make_shapes(64, seed=2024)
    for j, necessary in ((30, 1.0), (23, 0.0)):
        ex = explain(lm, d.x[j:j + 1], seed=j, progress=False)
        assert metrics.sufficiency(lm.clf, d.x[j:j + 1], ex.mask, ex.target).tolist() == [1.0]
        assert metrics.necessity(lm.clf, d.x[j:j + 1], ex.mask, ex.target).tolist() == [necessary]
        assert any("necessity not met" in w for w in ex.warnings) == (necessary == 0.0)


def test_warnings_name_an_unnecessary_mask_only_when_necessity_is_asked_for():
    from actmatch_lite.method.objective import explanation_warnings
    m = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    m[:2, 0, :2, :2] = True                           # image 2's mask is empty
    kept, y, vacuous = torch.ones(3, dtype=torch.bool), torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.bool)
    necessary = torch.tensor([True, False, False])
    lines = explanation_warnings(m, kept, y, vacuous, necessary)
    assert [w for w in lines if "necessity not met" in w] == [w for w in lines if w.startswith("image 1:")]
    assert any("image 2: empty mask" in w for w in lines)   # an empty mask is reported as collapsed instead
    assert not any("necessity" in w for w in explanation_warnings(m, kept, y, vacuous))


def test_keep_rules_pick_the_final_the_last_feasible_or_the_smallest_feasible_mask():
    from actmatch_lite.method.stopping import keep_step
    # tiers (objective.tiers): 2 every constraint holds, 1 the label is kept but the mask is not necessary, 0 lost
    met, held = torch.tensor([2, 2, 0, 0, 1, 2, 1]), torch.tensor([0, 2, 2, 0, 2, 1, 1])
    area = torch.tensor([0.3, 0.5, 0.1, 0.2, 0.1, 0.5, 0.5])
    held_area = torch.tensor([1.0, 0.4, 0.6, 1.0, 0.3, 0.2, 0.2])
    assert keep_step("final", met, held, area, held_area).tolist() == [True] * 7
    # a lower tier never replaces a higher one (image 4), a higher tier always does (image 5)
    assert keep_step("last_feasible", met, held, area, held_area).tolist() == [True, True, False, True, False, True,
                                                                               True]
    # image 1 is feasible but larger than the feasible mask it holds; image 3 has never kept the label;
    # image 6 is larger than the held mask of its tier
    assert keep_step("smallest_feasible", met, held, area, held_area).tolist() == [True, False, False, True, False,
                                                                                   True, False]


def test_the_tracker_stops_a_stable_decided_feasible_mask_and_at_the_end_of_the_warm_up_a_feasible_one():
    from actmatch_lite.method.stopping import MaskTracker
    cfg = dataclasses.replace(FAST, patience=2, stable_iou=1.0, stop_max_bin=0.05, soft_steps=4, keep="final")
    tracker = MaskTracker.start(cfg, torch.zeros(4, 1, 2, 2))
    idx = torch.arange(4)
    m_soft = torch.tensor([1.0, 1.0, 1.0, 0.5]).view(4, 1, 1, 1).expand(4, 1, 2, 2)   # image 3 undecided
    tier = torch.tensor([2, 2, 1, 2])                                                  # image 2 not necessary
    for step in range(3):
        m = m_soft > 0.5
        m[1] = step != 1                      # image 1's mask flips at steps 1 and 2
        tracker.update(idx, step, m_soft, m, tier)
        training = tracker.stop(idx, step, m_soft, tier)
    # unchanged for 2 steps (its reference moved at step 0): image 0 stops; image 2 is not feasible, image 3 not
    # decided, image 1 not stable
    assert tracker.unchanged.tolist() == [2, 0, 2, 3] and training == 3
    assert tracker.active.tolist() == [False, True, True, True]
    assert tracker.steps_run.tolist() == [3] * 4 and torch.equal(tracker.held_soft, m_soft)   # keep="final"
    # the last warm-up step (soft_steps - 1) stops every image still training that meets every constraint
    assert tracker.stop(idx[1:], 3, m_soft[1:], tier[1:]) == 1
    assert tracker.active.tolist() == [False, False, True, False]


def test_tiers_rank_every_constraint_above_the_label_alone_above_nothing():
    from actmatch_lite.method.objective import feasible, tiers
    kept, necessary = torch.tensor([True, True, False, False]), torch.tensor([True, False, True, False])
    assert tiers(kept, necessary).tolist() == [2, 1, 0, 0]
    m = torch.zeros(4, 1, 2, 2, dtype=torch.bool)
    m[:3, 0, 0, 0] = True                              # image 3's mask is empty
    assert feasible(tiers(kept, torch.ones(4, dtype=torch.bool)), m).tolist() == [2, 2, 0, 0]


def test_feasible_keep_rules_return_a_mask_that_keeps_the_label_when_any_step_did():
    for rule in ("last_feasible", "smallest_feasible"):
        cfg = dataclasses.replace(FAST, keep=rule, lambda_rob=0.0, steps=15)
        ex = explain(TinyCNN(), images(1), config=cfg, progress=False)
        assert max(ex.history["kept"]) == 1.0   # some step was feasible on this image
        assert not any("does not keep the label" in w for w in ex.warnings)


def test_an_empty_mask_is_never_feasible_even_when_the_fill_alone_keeps_the_class():
    clf = TinyCNN()
    with torch.no_grad():
        clf.head[-1].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))   # class 0 on every input, a blank one included
    cfg = dataclasses.replace(FAST, lambda_area=1e4, lambda_ce=0.0, lambda_kl=0.0, lambda_act=0.0,
                              lambda_rob=0.0, lambda_nec=0.0, lr=1e-1, steps=8, soft_steps=0)
    for rule in ("last_feasible", "smallest_feasible"):
        ex = explain(clf, images(2), config=dataclasses.replace(cfg, keep=rule), progress=False)
        assert min(ex.history["hard_area"]) == 0          # the optimisation did reach the empty mask...
        assert (ex.area > 0).all(), rule                  # ...but it is not returned as an explanation
        assert sum("vacuous sufficiency" in w for w in ex.warnings) == 2   # and says the label proves nothing
    ex = explain(clf, images(2), config=dataclasses.replace(cfg, keep="final"), progress=False)
    assert (ex.area == 0).all()                           # the authors' rule returns it (and warns)


@pytest.mark.parametrize("fill", ["zero", "mean", "blur"])
def test_fill_kept_classifies_a_shared_fill_once_and_a_per_image_fill_per_image(fill):
    lm, x = tiny_loaded(), images(6)
    setup = resolve(lm, dataclasses.replace(FAST, fill=fill))
    f = make_fill(x, fill, mean=lm.mean)
    with torch.no_grad():
        classes = lm.clf(f).argmax(1)
    batches = []
    hook = lm.clf.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    try:
        for y in (classes, (classes + 1) % 3):
            assert torch.equal(fill_kept(setup, f, y), classes == y)
    finally:
        hook.remove()
    assert batches == ([6, 6] if fill == "blur" else [1, 1])   # a fill shared by every image: one image's pass


def test_the_vacuous_sufficiency_warning_names_exactly_the_images_whose_fill_alone_keeps_the_class():
    clf, x = TinyCNN().eval(), images(6)
    ex = explain(clf, x, config=dataclasses.replace(FAST, lambda_act=0.0, steps=4), progress=False)
    with torch.no_grad():
        fill_class = clf(torch.zeros_like(x)).argmax(1)
        kept = clf(ex.explanation).argmax(1) == ex.target
    expected = {i for i in range(6) if fill_class[i] == ex.target[i] and kept[i]}
    assert 0 < len(expected) < 6                          # both cases occur on these images
    assert {int(w.split(":")[0].split()[1]) for w in ex.warnings if "vacuous" in w} == expected


def test_chunks_give_exactly_the_results_of_explaining_each_chunk_with_its_seed():
    """The promise explain keeps: image i's result depends on its chunk, its seed ``seed + i``, the device and the
    thread count; a chunked call is bit for bit the calls on each chunk (what the benchmarks run)."""
    x, seed = images(5), 3
    cfg = dataclasses.replace(FAST, steps=8, patience=2, stable_iou=0.9)
    ex = explain(TinyCNN(), x, config=cfg, seed=seed, chunk_size=2, progress=False)
    parts = [explain(TinyCNN(), x[lo:lo + 2], config=cfg, seed=seed + lo, progress=False) for lo in (0, 2, 4)]
    for field in ("mask", "soft_mask", "explanation", "target", "prob_before", "prob_after", "steps_run"):
        assert torch.equal(getattr(ex, field), torch.cat([getattr(p, field) for p in parts])), field
    shifted = [w.replace(f"image {i}:", f"image {lo + i}:") for lo, p in zip((0, 2, 4), parts) for w in p.warnings
               for i in range(2) if w.startswith(f"image {i}:")]
    assert ex.warnings == tuple(shifted)
    assert len(ex.history["total"]) == max(len(p.history["total"]) for p in parts)
    whole = explain(TinyCNN(), x, config=cfg, seed=seed, chunk_size=5, progress=False)
    assert torch.equal(whole.soft_mask, explain(TinyCNN(), x, config=cfg, seed=seed, chunk_size=None,
                                                progress=False).soft_mask)


def test_chunks_bound_the_mask_networks_and_the_progress_bar_counts_every_image_step(monkeypatch):
    from actmatch_lite.method import explainer
    nets, bars = [], []

    class Net(explainer.MaskUNet):
        def __init__(self, *args, n_nets, **kwargs):
            nets.append(n_nets)
            super().__init__(*args, n_nets=n_nets, **kwargs)

    def bar(*args, disable=False, **kwargs):   # a visible bar, written to a buffer, whoever watches
        bars.append(tqdm(*args, disable=disable, file=io.StringIO(), **kwargs))
        return bars[-1]

    monkeypatch.setattr(explainer, "MaskUNet", Net)
    monkeypatch.setattr(explainer, "progress_bar", bar)
    explain(TinyCNN(), images(7), config=dataclasses.replace(FAST, steps=2), chunk_size=3, progress=True)
    assert nets == [3, 3, 1]
    assert len(bars) == 1 and bars[0].total == 7 * 2 and bars[0].n == 7 * 2   # image-steps
    # images that stop early still fill the bar exactly (their skipped steps count as done); one image: its steps
    cfg = dataclasses.replace(FAST, steps=40, patience=2, stable_iou=0.9, lambda_area=0.0, lambda_tv=0.0,
                              lambda_rob=0.0, lambda_nec=0.0)
    ex = explain(TinyCNN(), images(3), config=cfg, seed=1, progress=True)
    assert (ex.steps_run < 40).any() and bars[-1].total == bars[-1].n == 3 * 40
    explain(TinyCNN(), images(1), config=dataclasses.replace(FAST, steps=5), progress=True)
    assert bars[-1].total == bars[-1].n == 5 and bars[-1].unit == "step"


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_a_bad_chunk_size_is_refused_with_the_fix(size):
    from actmatch_lite._validate import InputError
    with pytest.raises(InputError, match="chunk_size"):
        explain(TinyCNN(), images(2), config=FAST, chunk_size=size, progress=False)
