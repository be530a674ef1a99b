"""Command line: ``python -m actmatch_lite {explain,demo,bench,ablate} ...`` (also the ``actmatch-lite`` script).

    python -m actmatch_lite explain IMAGE... --model NAME --out DIR [--overwrite] [--preset P] [--target K]
                                    [--seed S] [--steps N] [--device D]

writes, per image, ``DIR/<stem>.png`` (original | mask | explanation, with class names and confidences) and
``DIR/<stem>.json`` with the keys of :data:`RECORD_KEYS`. Before any model is loaded, ``DIR`` is created and
checked writable, and the run stops if an output would replace an input image (never allowed) or an existing
file (allowed with ``--overwrite``). Each file is written whole under a temporary name and then renamed, so an
interrupted run leaves no half-written output. Image files are read by :func:`read_image` (16-bit, alpha and
palette rules there). Bad input (a missing or unreadable file, an unknown model, preset or class, an unusable
``--out``) ends with one line on stderr and exit code 2, without a traceback (``--debug`` shows it); Ctrl-C
ends with one line and exit code 130.

Subcommands live in the modules of :data:`SUBCOMMAND_MODULES`; each exposes ``add_parser(subparsers)`` and
``run(args) -> int``. A module that is not installed is skipped, so the command line grows with the package.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from ._validate import InputError

SUBCOMMAND_MODULES = ("actmatch_lite.cli", "actmatch_lite.demo", "actmatch_lite.bench", "actmatch_lite.ablate")
SAVE_DPI = 150   # written figures are read on screen, not embedded in notebooks (viz.DPI keeps those small)
EXIT_USAGE = 2   # argparse's own code for bad usage: bad input on the command line is the same kind of error
EXIT_INTERRUPTED = 130   # 128 + SIGINT: what a shell reports for a program stopped by Ctrl-C
OUTPUT_SUFFIXES = (".png", ".json")
RECORD_KEYS = ("image", "model", "preset", "seed", "target", "class_name", "predicted", "predicted_name",
               "prob_before", "prob_after", "predicted_after", "area", "sufficiency", "necessity", "steps_run",
               "seconds", "figure", "warnings")


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (not a bug): reported in one line with exit code 2."""
    from .models.weights import ChecksumError

    # OSError: missing, unreadable, truncated or unidentifiable files (PIL's UnidentifiedImageError is one)
    return InputError, OSError, ValueError, ImportError, ChecksumError


def read_image(path: str | Path, model) -> torch.Tensor:
    """Image file (PNG, JPG, TIFF, anything PIL opens) -> ``(1, C, H, W)`` in [0, 1] via ``model.preprocess``.

    Each file is scaled by its own range: 8-bit files (1-bit, grey, palette, RGB) are converted by PIL to the
    model's grey (``L``) or RGB; 16-bit grey (``I;16``) is divided by 65535; float grey (``F``) must lie in [0, 1].
    Alpha (RGBA, LA, palette or PNG transparency) is dropped when every pixel is opaque; an image with
    transparent pixels is refused (the colour under them is undefined: flatten it first). CMYK, YCbCr, LAB, HSV
    and 32-bit integer (``I``) files are refused with the conversion to use
    (:func:`actmatch_lite.data.photos.to_image_tensor` holds these rules). Errors name the file.
    """
    from PIL import Image

    from .data.photos import readable_pil

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    with Image.open(path) as im:
        try:
            im = readable_pil(im)
            if im.mode in ("1", "L", "RGB"):   # 8-bit: PIL's own conversion, as before
                im = im.convert("L" if model.channels == 1 else "RGB")
            return model.preprocess(im)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None


def explanation_record(model, x: torch.Tensor, ex, cfg, *, image: str, preset: str, seed: int) -> dict:
    """The JSON record of one explained image ``x (1, C, H, W)`` (keys :data:`RECORD_KEYS`, but ``figure``)."""
    from . import metrics

    y = int(ex.target[0])
    with torch.no_grad():
        p_x = model.clf(x).softmax(1)[0]
        p_e = model.clf(ex.explanation.to(x.device)).softmax(1)[0]
    kw = {"fill": cfg.fill, "mean": model.mean}
    return {"image": image, "model": model.name, "preset": preset, "seed": seed,
            "target": y, "class_name": model.class_names[y], "predicted": int(p_x.argmax()),
            "predicted_name": model.class_names[int(p_x.argmax())], "prob_before": float(p_x[y]),
            "prob_after": float(p_e[y]), "predicted_after": int(p_e.argmax()), "area": float(ex.area[0]),
            "sufficiency": float(metrics.sufficiency(model.clf, x, ex.mask.to(x.device), y, **kw)[0]),
            "necessity": float(metrics.necessity(model.clf, x, ex.mask.to(x.device), y, **kw)[0]),
            "steps_run": int(ex.steps_run[0]), "seconds": round(ex.seconds, 3), "warnings": list(ex.warnings)}


def save_figure(x: torch.Tensor, ex, record: dict, path: Path, class_names) -> None:
    """original | mask | explanation, titled with class names and probabilities, saved as PNG."""
    import matplotlib.pyplot as plt

    from .viz import show_images

    y = record["target"]
    top1 = "" if record["predicted"] == y else f" (top-1 {record['predicted_name']})"
    titles = [f"image: {class_names[y]} {record['prob_before']:.2f}{top1}", f"mask: area {100 * record['area']:.1f}%",
              f"explanation: {class_names[y]} {record['prob_after']:.2f}"]
    fig = show_images([x[0].cpu(), ex.mask[0].float(), ex.explanation[0]], titles, ncols=3)
    fig.savefig(path, dpi=SAVE_DPI)
    plt.close(fig)


def write_outputs(out: Path, stem: str, model, x, ex, cfg, *, image: str, preset: str, seed: int) -> dict:
    """Write ``out/<stem>.png`` and ``out/<stem>.json``, each whole or not at all; return the record.

    Each file is written under a temporary name and renamed over the target, so an interruption (Ctrl-C, a
    full disk) never leaves a half-written file nor destroys an earlier one. Checks on what may be replaced
    are the caller's (:func:`check_outputs`).
    """
    out.mkdir(parents=True, exist_ok=True)
    record = explanation_record(model, x, ex, cfg, image=image, preset=preset, seed=seed)
    record["figure"] = str(out / f"{stem}.png")
    text = json.dumps({k: record[k] for k in RECORD_KEYS}, indent=1) + "\n"
    for suffix, write in ((".png", lambda p: save_figure(x, ex, record, p, model.class_names)),
                          (".json", lambda p: p.write_text(text))):
        part = out / f".{stem}.part{suffix}"   # keeps the suffix: savefig picks the format from it
        try:
            write(part)
            os.replace(part, out / f"{stem}{suffix}")
        finally:
            part.unlink(missing_ok=True)
    return record


def output_stems(images: list[Path]) -> list[str]:
    """One output stem per image: its file name's stem, ``_`` appended until unique (a/x.png, b/x.png -> x, x_)."""
    stems: list[str] = []
    for path in images:
        stem = path.stem
        while stem in stems:
            stem = f"{stem}_"
        stems.append(stem)
    return stems


def check_outputs(out: Path, stems: list[str], images: list[Path], overwrite: bool) -> None:
    """Before anything is computed: ``out`` is (made) a writable folder, no output would replace an input image,
    and, unless ``overwrite``, no output exists yet."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):   # the only sure test of writability (read-only mounts, ACLs)
            pass
    except OSError as err:
        raise InputError(f"--out {out} is not a writable folder ({err.strerror or err}); choose another --out.") \
            from None
    outputs = [out / f"{stem}{suffix}" for stem in stems for suffix in OUTPUT_SUFFIXES]
    for p in outputs:
        hit = next((i for i in images if p.exists() and p.samefile(i)), None)
        if hit is not None:
            raise InputError(f"the output {p} would overwrite the input image {hit} (outputs are named "
                             "<stem>.png and <stem>.json); choose another --out.")
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise InputError(f"outputs already exist in {out}: {', '.join(existing[:3])}{more}; pass --overwrite to "
                         "replace them, or choose another --out.")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "explain", help="explain image files with the per-image explainer",
        description="Explain image files: writes OUT/<stem>.png and OUT/<stem>.json per image. Existing files in "
                    "OUT are never replaced unless --overwrite is given; an input image never is.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", required=True, help="classifier name (see actmatch_lite.models.available_models)")
    p.add_argument("--out", required=True, type=Path, help="output folder for figures and JSON records "
                                                          "(created; checked writable before any work)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs already in --out (default: refuse)")
    p.add_argument("--preset", default=None, help="explainer preset (default: the model's)")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: the predicted class)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="maximum optimisation steps (default: the preset's)")
    p.add_argument("--device", default="cpu", help="cpu (default: the same result on every machine), cuda, cuda:N, "
                                                   "or auto (a GPU when there is one)")
    p.set_defaults(run=run)


def load_config(model, preset: str | None, steps: int | None):
    """The preset (default: the model's) with ``steps`` overridden when given."""
    from .config import get_preset

    cfg = get_preset(preset or model.preset)
    return dataclasses.replace(cfg, steps=steps) if steps is not None else cfg


def load_named_model(name: str, device: str = "cpu"):
    """``load_model(name, device=device)``, with an unknown name reported before anything heavy is imported."""
    from .models import available_models, load_model

    if name not in available_models():
        raise InputError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
    return load_model(name, device=device)


def run(args) -> int:
    from .explainer import explain
    from .objective import classifier_device

    for path in args.images:   # every file and the output folder are checked before the model loads: fail fast
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
    stems = output_stems(args.images)
    check_outputs(args.out, stems, args.images, args.overwrite)
    model = load_named_model(args.model, args.device)
    device = classifier_device(model.clf, None)
    cfg = load_config(model, args.preset, args.steps)
    for path, stem in zip(args.images, stems):
        x = read_image(path, model).to(device)
        ex = explain(model, x, config=cfg, target=args.target, seed=args.seed)
        r = write_outputs(args.out, stem, model, x, ex, cfg, image=str(path), preset=args.preset or model.preset,
                          seed=args.seed)
        print(f"{path}: {r['class_name']} p {r['prob_before']:.3f} -> {r['prob_after']:.3f}, area {r['area']:.3f}, "
              f"sufficient {bool(r['sufficiency'])}, necessary {bool(r['necessity'])} -> {args.out / stem}.png/.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actmatch_lite", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:   # the module exists but one of ITS imports is missing: a real error
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; exit code 0, 2 (bad input) or 130 (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"actmatch_lite {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except user_errors() as err:
        if args.debug:
            raise
        print(f"actmatch_lite {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
