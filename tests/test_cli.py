"""Command line: explain writes a figure and a JSON record; bad input exits with code 2 and one line."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from actmatch_lite.data import make_shapes
from actmatch_lite.interface import cli, demo, explain_files


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
    assert tuple(record) == explain_files.RECORD_KEYS
    assert (out / "shape.png").stat().st_size > 0 and record["figure"] == str(out / "shape.png")
    assert record["model"] == "shapes-cnn" and record["preset"] == "shapes" and record["seed"] == 1
    assert 0 <= record["prob_after"] <= 1 and 0 <= record["area"] <= 1 and record["steps_run"] <= 3
    assert "shape.png" in capsys.readouterr().out


def test_grey_image_is_converted_to_the_models_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 50), 128, dtype=np.uint8)).save(path)
    model = explain_files.load_named_model("shapes-cnn")
    assert tuple(explain_files.read_image(path, model).shape) == (1, 3, 40, 50)


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


def _explain(*args: str) -> int:
    return cli.main(["explain", *map(str, args), "--model", "shapes-cnn", "--steps", "1"])


def test_an_input_image_is_never_overwritten(png, capsys):
    before = png.read_bytes()
    assert _explain(png, "--out", png.parent) == 2
    assert _explain(png, "--out", png.parent, "--overwrite") == 2
    err = capsys.readouterr().err
    assert png.read_bytes() == before and "input image" in err and "--out" in err
    assert not png.with_suffix(".json").exists()


def test_a_second_run_refuses_to_overwrite_unless_asked(png, tmp_path, capsys):
    out = tmp_path / "out"
    assert _explain(png, "--out", out) == 0
    first = json.loads((out / "shape.json").read_text())
    (out / "shape.json").write_text("earlier result")
    assert _explain(png, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out / "shape.png") in err and "--overwrite" in err
    assert (out / "shape.json").read_text() == "earlier result"
    assert _explain(png, "--out", out, "--overwrite") == 0
    again = json.loads((out / "shape.json").read_text())
    assert again.pop("seconds") and again == {k: v for k, v in first.items() if k != "seconds"}
    assert sorted(p.name for p in out.iterdir()) == ["shape.json", "shape.png"]   # no temporary file left


def test_an_unusable_out_folder_fails_before_the_model_loads(png, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(explain_files, "load_named_model", lambda *a: pytest.fail("the model was loaded"))
    assert _explain(png, "--out", png / "sub") == 2                       # below a file: cannot be created
    assert "--out" in capsys.readouterr().err


def test_ctrl_c_prints_one_line_and_exits_130(png, tmp_path, monkeypatch, capsys):
    def interrupt(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(explain_files, "load_named_model", interrupt)
    assert _explain(png, "--out", tmp_path / "o") == 130
    err = capsys.readouterr().err.strip()
    assert err == "actmatch_lite explain: interrupted" and "Traceback" not in err


def _write(path, mode: str, bits: np.ndarray):
    """Save ``bits`` (an 8-bit (H, W, 3) RGB image) as ``mode``; return the RGB floats it must read back as."""
    rgb = Image.fromarray(bits)
    if mode == "I;16":   # 16-bit grey: a PNG scaled by 65535, never clipped to 255
        grey = bits[..., 0].astype(np.uint16) * 257
        Image.fromarray(grey).save(path)
        return torch.from_numpy(grey / 65535).float().expand(3, -1, -1)
    im = {"RGBA": lambda: rgb.convert("RGBA"), "P": lambda: rgb.quantize(256), "1": lambda: rgb.convert("1"),
          "LA": lambda: rgb.convert("LA"), "RGB": lambda: rgb}[mode]()
    im.save(path)
    return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "1", "I;16"])
def test_image_files_are_read_by_their_own_range(png, tmp_path, mode):
    bits = np.asarray(Image.open(png))
    expected = _write(tmp_path / "im.png", mode, bits)
    x = explain_files.read_image(tmp_path / "im.png", explain_files.load_named_model("shapes-cnn"))
    assert x.shape == (1, 3, 64, 64) and (x[0] - expected).abs().max() <= 1e-6
    assert float(x.std()) > 0.05                                           # not a blank (all-white) image


@pytest.mark.parametrize("make, message", [
    (lambda: Image.new("RGBA", (40, 40), (255, 0, 0, 0)), "transparent"),
    (lambda: Image.new("CMYK", (40, 40), (0, 255, 0, 0)), "CMYK"),
    (lambda: Image.fromarray(np.full((40, 40), 7, dtype=np.int32)), "mode 'I'"),
    (lambda: Image.fromarray(np.full((40, 40), 255, dtype=np.float32)), "by 255"),
])
def test_image_files_that_cannot_be_read_right_are_refused(make, message, tmp_path, capsys):
    path = tmp_path / ("im.tif" if make().mode in ("I", "F") else "im.jpg" if make().mode == "CMYK" else "im.png")
    make().save(path)
    assert _explain(path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "im.png").exists()


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "actmatch_lite", "explain", str(tmp_path / "none.png"),
                           "--model", "shapes-cnn", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "not found" in done.stderr


def test_every_subcommand_is_declared_in_cli():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"explain", "demo", "bench", "ablate", "instances", "train", "amortized", "notebooks",
                                "fmnist-subset"}


def test_demo_table_formatter():
    rows = [{"input": "shape", "model": "shapes-cnn", "target": 2, "class_name": "triangle", "prob_before": 0.9,
             "prob_after": 0.95, "area": 0.04, "sufficiency": 1.0, "necessity": 0.0, "seconds": 1.23},
            {"input": "chelsea", "model": "efficientnet-lite0", "skipped": "not installed"}]
    lines = demo.format_table(rows).splitlines()
    assert lines[0] == "| " + " | ".join(demo.COLUMNS) + " |" and len(lines) == 4
    assert lines[2] == "| shape | shapes-cnn | triangle (2) | 0.900 → 0.950 | 4.0 % | yes | no | 1.2 |"
    assert "skipped: not installed" in lines[3]
