"""Command line: explain writes a figure and a JSON record; bad input exits with code 2 and one line."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from actmatch_lite import cli, demo
from actmatch_lite.data import make_shapes


@pytest.fixture
def png(tmp_path):
    x = make_shapes(1, seed=99).x[0]
    path = tmp_path / "shape.png"
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path


def test_explain_writes_figure_and_record(png, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["explain", str(png), "--model", "shapes-cnn", "--out", str(out), "--steps", "3", "--seed", "1"])
    assert code == 0
    record = json.loads((out / "shape.json").read_text())
    assert tuple(record) == cli.RECORD_KEYS
    assert (out / "shape.png").stat().st_size > 0 and record["figure"] == str(out / "shape.png")
    assert record["model"] == "shapes-cnn" and record["preset"] == "shapes" and record["seed"] == 1
    assert 0 <= record["prob_after"] <= 1 and 0 <= record["area"] <= 1 and record["steps_run"] <= 3
    assert "shape.png" in capsys.readouterr().out


def test_grey_image_is_converted_to_the_models_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 50), 128, dtype=np.uint8)).save(path)
    model = cli.load_named_model("shapes-cnn")
    assert tuple(cli.read_image(path, model).shape) == (1, 3, 40, 50)


@pytest.mark.parametrize("args, message", [
    (["missing.png", "--model", "shapes-cnn"], "not found"),
    (["{png}", "--model", "vgg99"], "unknown model"),
    (["{png}", "--model", "shapes-cnn", "--preset", "nope"], "unknown preset"),
    (["{png}", "--model", "shapes-cnn", "--target", "17"], "target"),
    (["{bad}", "--model", "shapes-cnn"], "cannot identify image"),
    (["{png}", "--model", "shapes-cnn", "--device", "gpu"], "unknown device 'gpu'"),
])
def test_bad_input_exits_2_with_one_line(args, message, png, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    argv = ["explain", *[a.format(png=png, bad=bad) for a in args], "--out", str(tmp_path / "o"), "--steps", "1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "actmatch_lite", "explain", str(tmp_path / "none.png"),
                           "--model", "shapes-cnn", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "not found" in done.stderr


def test_parser_has_the_subcommands():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert {"explain", "demo"} <= set(sub.choices)


def test_demo_table_formatter():
    rows = [{"input": "shape", "model": "shapes-cnn", "target": 2, "class_name": "triangle", "prob_before": 0.9,
             "prob_after": 0.95, "area": 0.04, "sufficiency": 1.0, "necessity": 0.0, "seconds": 1.23},
            {"input": "chelsea", "model": "efficientnet-lite0", "skipped": "not installed"}]
    lines = demo.format_table(rows).splitlines()
    assert lines[0] == "| " + " | ".join(demo.COLUMNS) + " |" and len(lines) == 4
    assert lines[2] == "| shape | shapes-cnn | triangle (2) | 0.900 → 0.950 | 4.0 % | yes | no | 1.2 |"
    assert "skipped: not installed" in lines[3]
