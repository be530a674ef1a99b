"""Explaining image files: read each file by its own range, explain it, and write a figure and a JSON record.

For every image, ``OUT/<stem>.png`` (original | mask | explanation, with class names and confidences) and
``OUT/<stem>.json`` with the keys of :data:`RECORD_KEYS`. Before any model is loaded, ``OUT`` is created and
checked writable, and the run stops if an output would replace an input image (never allowed) or an existing file
(allowed with ``overwrite``). Each file is written whole under a temporary name and then renamed, so an interrupted
run leaves no half-written output. Used by ``python -m actmatch_lite explain`` and the demo.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image

from actmatch_lite._validate import InputError
from actmatch_lite.data.photos import readable_pil
from actmatch_lite.evaluation import metrics
from actmatch_lite.evaluation.methods import explainer_config
from actmatch_lite.interface.viz import show_images
from actmatch_lite.method.explainer import explain
from actmatch_lite.method.setup import classifier_device
from actmatch_lite.models import available_models, load_model

SAVE_DPI = 150   # written figures are read on screen, not embedded in notebooks (viz.DPI keeps those small)
OUTPUT_SUFFIXES = (".png", ".json")
RECORD_KEYS = ("image", "model", "preset", "seed", "target", "class_name", "predicted", "predicted_name",
               "prob_before", "prob_after", "predicted_after", "area", "sufficiency", "necessity", "steps_run",
               "seconds", "figure", "warnings")


def read_image(path: str | Path, model) -> torch.Tensor:
    """Image file (PNG, JPG, TIFF, anything PIL opens) -> ``(1, C, H, W)`` in [0, 1] via ``model.preprocess``.

    Each file is scaled by its own range: 8-bit files (1-bit, grey, palette, RGB) are converted by PIL to the
    model's grey (``L``) or RGB; 16-bit grey (``I;16``) is divided by 65535; float grey (``F``) must lie in [0, 1].
    Alpha (RGBA, LA, palette or PNG transparency) is dropped when every pixel is opaque; an image with
    transparent pixels is refused (the colour under them is undefined: flatten it first). CMYK, YCbCr, LAB, HSV
    and 32-bit integer (``I``) files are refused with the conversion to use
    (:func:`actmatch_lite.data.photos.to_image_tensor` holds these rules). Errors name the file.
    """
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


def load_named_model(name: str, device: str = "cpu"):
    """``load_model(name, device=device)``, with an unknown name reported before anything heavy is imported."""
    if name not in available_models():
        raise InputError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
    return load_model(name, device=device)


def explain_files(images: list[Path], model_name: str, out: Path, *, overwrite: bool = False,
                  preset: str | None = None, target=None, seed: int = 0, steps: int | None = None,
                  device: str = "cpu") -> list[dict]:
    """Explain each image file with the per-image explainer and write its outputs; return the records.

    Every file and ``out`` are checked before the model loads (fail fast, nothing half done).
    """
    for path in images:
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
    stems = output_stems(images)
    check_outputs(out, stems, images, overwrite)
    model = load_named_model(model_name, device)
    dev = classifier_device(model.clf, None)
    cfg = explainer_config(model, steps, preset)
    records = []
    for path, stem in zip(images, stems):
        x = read_image(path, model).to(dev)
        ex = explain(model, x, config=cfg, target=target, seed=seed)
        records.append(write_outputs(out, stem, model, x, ex, cfg, image=str(path), preset=preset or model.preset,
                                     seed=seed))
    return records
