"""Benchmark: a tiny end-to-end run writes JSON of the documented shape; the table formatter; aggregation."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

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
