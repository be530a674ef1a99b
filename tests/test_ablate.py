"""Ablations: each variant is a dataclasses.replace of the preset changing exactly its field; collapse flags."""
import dataclasses
import json

import pytest
import torch

from actmatch_lite.evaluation import ablate
from actmatch_lite.interface import cli
from actmatch_lite.method.config import ExplainConfig

TAPS = ("a", "b", "c")
WEIGHTS = (1.0, 2.0, 4.0)


def differing(a: ExplainConfig, b: ExplainConfig) -> set[str]:
    return {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}


@pytest.mark.parametrize("rob, nec", [(4.0, 0.0), (4.0, 3.0), (0.0, 0.0)])
def test_each_ablation_changes_exactly_its_field(rob, nec):
    cfg = ExplainConfig(lambda_rob=rob, lambda_nec=nec, fill="mean")
    variants = {v.name: v for v in ablate.ablation_variants(cfg, TAPS, WEIGHTS)}
    expected = {"full": set(), "no activation matching": {"lambda_act"}, "no KL": {"lambda_kl"},
                "no CE": {"lambda_ce"}, "one tap": {"taps", "tap_weights", "distances"},
                "no area": {"lambda_area"}, "no binarisation": {"lambda_bin"}, "no TV": {"lambda_tv"},
                ("no robustness" if rob else "with robustness"): {"lambda_rob"},
                "fill zero": {"fill"}, "fill blur": {"fill"},
                ("no necessity" if nec else "with necessity"): {"lambda_nec"}}
    if not rob and not nec:
        expected["with robustness + necessity"] = {"lambda_rob", "lambda_nec"}
    assert set(variants) == set(expected)
    for name, fields in expected.items():
        assert differing(cfg, variants[name].config) == fields, name
        assert set(variants[name].changed) == fields
    assert variants["one tap"].config.taps == ("c",) and variants["one tap"].config.tap_weights == (4.0,)
    assert variants["one tap"].config.distances == ("std_mse",)   # the deepest tap keeps its distance
    assert variants["no necessity" if nec else "with necessity"].config.lambda_nec == (0.0 if nec else cfg.lambda_ce)
    assert variants["no robustness" if rob else "with robustness"].config.lambda_rob == (0.0 if rob else cfg.lambda_ce)


def test_sweep_scales_area_and_tv_only():
    cfg = ExplainConfig(lambda_area=10.0, lambda_tv=20.0)
    sweep = ablate.sweep_variants(cfg, (0.5, 1.0, 4.0, 16.0))
    assert len(sweep) == 16
    pairs = {(v.config.lambda_area, v.config.lambda_tv) for v in sweep}
    assert pairs == {(10.0 * a, 20.0 * t) for a in (0.5, 1.0, 4.0, 16.0) for t in (0.5, 1.0, 4.0, 16.0)}
    assert all(differing(cfg, v.config) <= {"lambda_area", "lambda_tv"} for v in sweep)
    assert any(v.config == cfg for v in sweep)          # the preset is the (1, 1) cell


def test_collapse_on_hand_made_areas():
    area = torch.tensor([0.0, 0.0019, 0.002, 0.5, 0.95, 0.951, 1.0])
    assert ablate.collapsed(area).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_flags_on_hand_made_results():
    def entry(collapsed, nan):
        return {"collapsed": {"mean": collapsed, "std": 0.0}, "nan": {"mean": nan, "std": 0.0}}
    assert ablate.flags(entry(0.0, 0.0)) == []
    assert ablate.flags(entry(0.49, 0.0)) == []
    assert ablate.flags(entry(0.5, 0.0)) == ["collapsed"]
    assert ablate.flags(entry(1.0, 1 / 3)) == ["collapsed", "NaN"]
    assert ablate.flags({"nan": {"mean": 1.0, "std": 0.0}}) == ["NaN"]   # a run that blew up has no areas


def test_a_loss_that_blows_up_is_recorded_as_nan(monkeypatch):
    def blow_up(*args, **kwargs):
        raise FloatingPointError("the loss became NaN")
    monkeypatch.setattr(ablate, "run_actmatch", blow_up)
    assert ablate.score_variant(None, torch.zeros(1, 3, 8, 8), None, ExplainConfig(), 0, 1) == {"nan": 1.0}


def test_tiny_sweep_writes_json_and_plots(tmp_path, capsys):
    path = tmp_path / "ablate.json"
    assert cli.main(["ablate", "shapes", "--n", "1", "--seeds", "101", "--steps", "1", "--sweep-only", "--factors", "0.5",
                     "1", "--no-progress", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert len(result["methods"]) == 4 and {"suite", "n", "seeds", "machine", "methods"} <= set(result)
    assert all(info["sweep"] for info in result["variants"].values())
    assert (tmp_path / "ablate_sweep.png").stat().st_size > 1000
    assert "| sweep | sufficiency ↑" in capsys.readouterr().out
