"""Multi-instance procedure: disjoint masks, one per instance; stops when the class is gone; the K cap."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from actmatch_lite.config import get_preset
from actmatch_lite.data import make_shapes
from actmatch_lite.explainer import Explanation
from actmatch_lite import instances
from actmatch_lite.instances import components, dilate, explain_instances, search_config
from actmatch_lite.metrics import instance_purity, instance_recall
from actmatch_lite.models import load_model

SEED = 31337   # never used for training or tuning


@pytest.fixture(scope="module")
def model():
    return load_model("shapes-cnn", device="cpu")


GAP = 16        # black columns between the two halves, so the two instances cannot touch
SQUARE = 1      # a convex class: the explainer's masks lie mostly on the object (precision ≥ 0.7)


@pytest.fixture(scope="module")
def canvas(model):
    """Two squares side by side, ``GAP`` px apart: a 64×144 canvas and its instance masks ``(2, 1, 64, 144)``."""
    d = make_shapes(12, seed=SEED)
    i, j = (d.y == SQUARE).nonzero()[:2, 0].tolist()
    x = torch.cat([d.x[i], torch.zeros(3, 64, GAP), d.x[j]], -1)[None]
    gt = torch.zeros(2, 1, 64, 128 + GAP, dtype=torch.bool)
    gt[0, :, :, :64], gt[1, :, :, 64 + GAP:] = d.masks[i], d.masks[j]
    assert int(model.predict(x)[0][0]) == SQUARE
    return x, gt, SQUARE


def oracle(gt):
    """An explainer whose k-th call returns ground-truth instance k, then empty masks (exact, instant)."""
    calls = []

    def explain_fn(x, target, seed):
        calls.append(seed)
        m = (gt[len(calls) - 1] if len(calls) <= len(gt) else torch.zeros_like(gt[0]))[None]
        return Explanation(m, m.float(), x, torch.tensor([target]), torch.ones(1), torch.ones(1), {},
                           torch.zeros(1), 0.0, None, ())
    return explain_fn


def test_oracle_finds_both_instances_then_stops_because_the_class_is_gone(model, canvas):
    x, gt, y = canvas
    res = explain_instances(model, x, explain_fn=oracle(gt))
    assert res.counts.tolist() == [2] and res.targets[0].tolist() == [y, y]
    assert torch.equal(res.masks[0], gt)
    assert "no longer supports" in res.stops[0][0] and res.rounds == (2,)


def test_max_instances_caps_the_search(model, canvas):
    x, gt, _ = canvas
    res = explain_instances(model, x, max_instances=1, explain_fn=oracle(gt))
    assert res.counts.tolist() == [1] and "max_instances=1" in res.stops[0][0]


def test_explainer_finds_two_disjoint_instances(model, canvas):
    x, gt, y = canvas
    cfg = dataclasses.replace(get_preset(model.preset), steps=60)
    res = explain_instances(model, x, config=cfg, max_instances=3, seed=0)
    masks = res.masks[0]
    assert len(masks) == 2, res.stops
    assert not (masks[0] & masks[1]).any() and res.targets[0].tolist() == [y, y]
    assert instance_recall([masks], [gt]).item() == 1.0
    assert instance_purity([masks], [gt]).item() == 1.0


def test_helpers_and_bad_arguments(model, canvas):
    m = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    m[0, 0, 4, 4] = True
    assert dilate(m, 1).sum() == 9 and torch.equal(dilate(m, 0), m)
    m[0, 0, 0, 0] = m[0, 0, 0, 1] = True
    assert [int(p.sum()) for p in components(m)] == [2, 1]
    x = canvas[0]
    with pytest.raises(ValueError, match="not both"):
        explain_instances(model, x, target=0, classes=[0, 1])
    with pytest.raises(ValueError, match="max_instances"):
        explain_instances(model, x, max_instances=0)


def test_a_preset_is_searched_without_the_necessity_term(model, canvas, monkeypatch):
    """One instance cannot be necessary while another remains: presets go through search_config (λ_nec = 0)."""
    assert get_preset(model.preset).lambda_nec > 0 and search_config(get_preset(model.preset)).lambda_nec == 0
    seen = []

    def spy(clf, x, *, config, **kwargs):
        seen.append(config)
        return real_explain(clf, x, config=dataclasses.replace(config, steps=5), **kwargs)

    real_explain = instances.explain
    monkeypatch.setattr(instances, "explain", spy)
    explain_instances(model, canvas[0], max_instances=1)
    cfg = dataclasses.replace(get_preset(model.preset), steps=5)
    explain_instances(model, canvas[0], max_instances=1, config=cfg)
    assert seen[0].lambda_nec == 0 and seen[-1].lambda_nec == cfg.lambda_nec   # a given ExplainConfig is kept
