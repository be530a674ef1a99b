"""Benchmark: a tiny end-to-end run writes JSON of the documented shape; the table formatter; aggregation."""
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from actmatch_lite._validate import InputError
from actmatch_lite.evaluation import bench, report, scoring
from actmatch_lite.evaluation.methods import Skipped
from actmatch_lite.interface import cli

TINY = ["--n", "2", "--seeds", "101", "--steps", "2", "--no-b1", "--no-progress"]


@pytest.fixture
def no_amortized(monkeypatch):
    def missing(lm):
        raise Skipped(f"no shipped amortized explainer for {lm.name} (test)")
    monkeypatch.setattr(bench, "load_amortized_explainer", missing)


def test_tiny_bench_writes_json_of_the_documented_shape(tmp_path, capsys, no_amortized):
    path = tmp_path / "out" / "shapes.json"
    assert cli.main(["bench", "shapes", *TINY, "--methods", "actmatch", "actmatch-amortized", "random", "square",
                       "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert {"suite", "n", "seeds", "machine", "methods"} <= set(result)
    assert result["suite"] == "shapes" and result["n"] == 2 and result["seeds"] == [101]
    assert {"cpu", "cores", "torch"} <= set(result["machine"])
    assert list(result["methods"]) == ["actmatch", "actmatch-amortized", "random", "square"]
    assert result["methods"]["actmatch-amortized"] == {"skipped": "no shipped amortized explainer for shapes-cnn (test)"}
    for name in ("actmatch", "random", "square"):
        entry = result["methods"][name]
        for metric in ("sufficiency", "robustness", "necessity", "area", "iou", "pointing", "deletion_auc",
                       "insertion_auc", "seconds_per_image"):
            assert set(entry[metric]) == {"mean", "std", "per_seed"}, (name, metric)
            assert len(entry[metric]["per_seed"]) == 1 and entry[metric]["std"] == 0.0
        assert "instance_recall" not in entry          # shapes have one object: no instance metrics
    # equal area: every baseline keeps exactly the pixels our mask keeps
    for name in ("random", "square"):
        assert result["methods"][name]["area"]["mean"] == pytest.approx(result["methods"]["actmatch"]["area"]["mean"])
    printed = capsys.readouterr().out
    assert "| method | sufficiency ↑ |" in printed and "skipped: no shipped amortized" in printed
    assert "AMD" in printed or result["machine"]["cpu"] in printed


def test_another_preset_sets_the_explainer_and_skips_the_amortized_network_trained_for_the_model_preset(tmp_path,
                                                                                                      capsys):
    path = tmp_path / "fmnist.json"
    assert cli.main(["bench", "fmnist", *TINY, "--preset", "fmnist-necessary", "--methods", "actmatch",
                       "actmatch-amortized", "random", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["preset"] == "fmnist-necessary" and result["config"]["lambda_nec"] == 4.0
    assert "trained with preset 'fmnist'" in result["methods"]["actmatch-amortized"]["skipped"]
    assert cli.main(["bench", "sanity", "fmnist", *TINY, "--preset", "fmnist-necessary"]) == 2
    assert "drop --preset" in capsys.readouterr().err


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown methods"):
        bench.run_bench("shapes", n=1, seeds=(101,), methods=["actmatch", "lime"], steps=1, progress=False)


def test_aggregate_means_and_stds_over_finite_seeds():
    out = report.aggregate([{"a": 1.0, "b": math.nan}, {"a": 3.0, "b": 2.0}, {"a": 2.0}])
    assert out["a"]["mean"] == 2.0 and out["a"]["std"] == pytest.approx(1.0)
    assert out["b"]["mean"] == 2.0 and out["b"]["std"] == 0.0
    assert math.isnan(out["b"]["per_seed"][0]) and math.isnan(out["b"]["per_seed"][2])


def test_markdown_table_exact():
    methods = {"actmatch": {"sufficiency": {"mean": 0.98765, "std": 0.0123, "per_seed": []},
                            "seconds_per_image": {"mean": 0.012345, "std": 0.001, "per_seed": []}},
               "gradcam": {"sufficiency": {"mean": 0.5, "std": 0.0, "per_seed": []}},
               "amortized": {"skipped": "no file"}}
    table = report.markdown_table(methods, ["sufficiency", "iou", "seconds_per_image"], n_seeds=3)
    assert table.splitlines() == [
        "| method | sufficiency ↑ | seconds_per_image ↓ |",    # iou is in no entry: no column
        "|---|---|---|",
        "| actmatch | 0.988 ± 0.012 | 0.0123 ± 0.001 |",
        "| gradcam | 0.500 ± 0.000 | – |",
        "| amortized | skipped: no file |  |",
    ]
    one_seed = report.markdown_table({"a": {"area": {"mean": 0.25, "std": 0.0, "per_seed": [0.25]}}}, ["area"], 1)
    assert one_seed.splitlines()[-1] == "| a | 0.250 |"


def test_directions_of_table_metrics():
    assert scoring.arrow("pointing") == "↑" and scoring.arrow("deletion_auc_blur") == "↓"
    assert scoring.arrow("seconds_per_image_b1") == "↓" and scoring.arrow("insertion_auc") == "↑"
    assert scoring.arrow("sanity_iou") == "↓" and scoring.arrow("shift_stability") == "↑"


def test_paste_tables_fills_marked_blocks_verbatim(tmp_path):
    spec = importlib.util.spec_from_file_location("paste_tables", Path(__file__).parents[1] / "benchmarks" / "paste_tables.py")
    paste_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paste_tables)
    (tmp_path / "a.md").write_text("| x |\n|---|\n| 1 |\nwrote benchmarks/a.json\n")
    text = "intro\n<!-- table:a -->\nold\n<!-- /table:a -->\n<!-- table:b -->\nkeep\n<!-- /table:b -->\n"
    out, missing = paste_tables.paste(text, tmp_path)
    assert out == "intro\n<!-- table:a -->\n| x |\n|---|\n| 1 |\n<!-- /table:a -->\n<!-- table:b -->\nkeep\n<!-- /table:b -->\n"
    assert missing == ["b"]


def test_photos_bench_reports_each_photo_and_the_confident_ones_apart(monkeypatch):
    # only the area is scored (the full protocol on EfficientNet takes minutes; scoring has its own tests)
    monkeypatch.setattr(bench.scoring, "score", lambda lm, x, res, y, **kw: {"area": res.mask.flatten(1).float().mean(1)})
    r = bench.run_bench("photos", n=2, seeds=(101, 102), methods=["actmatch", "gradcam"], steps=2, progress=False)
    records = r["photos"]
    assert [p["name"] for p in records] == ["chelsea", "coffee"]
    assert [p["confident"] for p in records] == [p["p"] >= 0.5 for p in records] == [False, True]
    assert set(r["methods_confident"]) == {"actmatch", "gradcam"}
    # the confident table is the mean over the confident photo alone (coffee): its area is coffee's own area
    assert r["methods_confident"]["actmatch"]["area"]["mean"] == pytest.approx(records[1]["actmatch"]["area"])
    assert r["methods"]["actmatch"]["area"]["mean"] == pytest.approx(sum(p["actmatch"]["area"] for p in records) / 2)
    text = bench.format_result(r)
    assert "Confident photos only (top-1 p >= 0.5: 1 of 2)" in text and "| coffee | espresso | 0.84 | yes |" in text


def test_bench_masks_round_trip_through_the_npz(tmp_path):
    masks = {}
    bench.run_bench("shapes", n=3, seeds=(101, 102), methods=["actmatch", "gradcam"], steps=2, progress=False,
                    masks=masks)
    assert masks["names"] == ["shapes[101:0]", "shapes[101:1]", "shapes[101:2]"]   # the first seed's images
    names, back = report.read_masks(report.write_masks(masks, tmp_path / "m.npz"))
    assert names == masks["names"] and set(back) == {"actmatch", "gradcam"}
    assert all(torch.equal(back[k], masks[k]) for k in back) and back["actmatch"].shape == (3, 1, 64, 64)
    # gradcam is held to actmatch's area, image by image
    assert torch.equal(back["gradcam"].flatten(1).sum(1), back["actmatch"].flatten(1).sum(1))


def test_extremal_perturbation_lengths_scale_with_the_image_side():
    from actmatch_lite.evaluation.baselines import extremal
    from actmatch_lite.evaluation.suites import SUITES, extremal_options
    assert extremal_options(224) == {"grid_step": extremal.GRID_STEP, "sigma": extremal.SIGMA,
                                     "max_blur": extremal.MAX_BLUR}   # the photo suites keep TorchRay's defaults
    assert SUITES["fmnist"].baseline_options["extremal-perturbation"] == {"grid_step": 1, "sigma": 2.625,
                                                                          "max_blur": 2.5}
    assert "extremal-perturbation" not in SUITES["photos"].baseline_options


def test_photo_composites_suite_has_two_or_three_exact_instances_and_their_union_as_object_mask():
    from actmatch_lite.evaluation.suites import COMPOSITE_INSTANCES, get_suite, load_suite_data
    d = load_suite_data(get_suite("photo-composites"), 4, 101)
    assert d.x.shape == (4, 3, 224, 224) and d.names[0] == "composite[101:0]"
    for inst, gt in zip(d.instances, d.gt):
        assert len(inst) in COMPOSITE_INSTANCES and torch.equal(inst.any(0), gt)
    assert get_suite("photo-composites").min_prob == 0.5 and get_suite("canvases").min_prob == 0.7


def test_bench_refuses_n_and_named_photos_that_disagree():
    with pytest.raises(InputError, match="--n 3 and 2 named photos disagree"):
        bench.run_bench("photos", n=3, photos=("coffee", "camera"))
