"""The benchmark's photo suite: a catalogue of real photos with their source and licence, loaded offline.

Nothing is downloaded and no photo ships in this repository: each is read from a package installed here.

* ``scikit-image`` and ``matplotlib`` (core dependencies) hold 11 of them;
* ``scikit-learn`` (installed with the ``imagenet`` extra; optional otherwise) holds ``china`` and ``flower``;
* Debian's ``opencv-doc`` (optional, **benchmark only**: ``apt-get install opencv-doc``) holds 12 more.

:data:`CATALOGUE` fixes the order: core sources first, then scikit-learn, then opencv-doc, so the first photos
are the same on every machine. :func:`available_photos` says which photos load here and, for the others,
which source to install; :func:`suite_photos` loads them as one batch. Licence decisions (and the photos left
out, e.g. opencv's ``baboon.jpg`` and ``messi5.jpg``) are explained in ``data/README.md``.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from actmatch_lite._validate import InputError
from actmatch_lite.data.photos import DEFAULT_SIZE, resize_center_crop, to_image_tensor

ENV_OPENCV_EXAMPLES = "ACTMATCH_OPENCV_EXAMPLES"
OPENCV_EXAMPLES = Path("/usr/share/doc/opencv-doc/examples")   # Debian's opencv-doc; override with the variable

SOURCES: dict[str, str] = {   # source -> how to install it
    "scikit-image": "a core dependency (pip install scikit-image)",
    "matplotlib": "a core dependency (pip install matplotlib)",
    "scikit-learn": "pip install scikit-learn",
    "opencv-doc": f"apt-get install opencv-doc (Debian/Ubuntu), or set ${ENV_OPENCV_EXAMPLES} to a folder "
                  "whose data/ holds OpenCV's samples/data",
}
OPTIONAL_SOURCES = ("scikit-learn", "opencv-doc")
BENCHMARK_ONLY_SOURCES = ("opencv-doc",)   # never needed by the tests

SK = "scikit-image's skimage.data"
CV_LICENCE = "Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright, 'Files: *'; no per-file record)"


@dataclass(frozen=True)
class SuitePhoto:
    """One photo: ``shows`` what is in it, ``where`` the ``skimage.data`` function or the file inside its source."""

    name: str
    shows: str
    source: str
    where: str
    credit: str
    licence: str

    @property
    def optional(self) -> bool:
        return self.source in OPTIONAL_SOURCES


_p = SuitePhoto   # short for the table below


CATALOGUE: tuple[SuitePhoto, ...] = (
    # the former six "photos" suite images first, in their old order (runs with n <= 6 are unchanged)
    _p("chelsea", "Chelsea the cat", "scikit-image", "chelsea", f"{SK}, Stefan van der Walt", "CC0"),
    _p("coffee", "a cup of coffee", "scikit-image", "coffee", f"{SK}, Rachel Michetti", "CC0"),
    _p("rocket", "DSCOVR launch on Falcon 9", "scikit-image", "rocket", f"{SK}, SpaceX", "public domain"),
    _p("astronaut", "astronaut Eileen Collins", "scikit-image", "astronaut", f"{SK}, NASA", "public domain"),
    _p("horse", "a horse silhouette (a drawing, not a photo)", "scikit-image", "horse",
       f"{SK}, openclipart, Andreas Preuss", "CC0"),
    _p("camera", "a photographer with a camera (grey)", "scikit-image", "camera", f"{SK}, Lav Varshney", "CC0"),
    _p("clock", "a wall clock, motion-blurred (grey)", "scikit-image", "clock", f"{SK}, Stefan van der Walt",
       "public domain"),
    _p("coins", "Greek coins from Pompeii (grey)", "scikit-image", "coins", f"{SK}, Brooklyn Museum",
       "no known copyright restrictions"),
    _p("hubble_deep_field", "galaxies, Hubble eXtreme Deep Field", "scikit-image", "hubble_deep_field",
       f"{SK}, NASA / HubbleSite", "public domain"),
    _p("retina", "fundus photograph of a left eye", "scikit-image", "retina", f"{SK}, Mikael Häggström",
       "CC0"),
    _p("grace_hopper", "Rear Admiral Grace Hopper in uniform", "matplotlib", "grace_hopper.jpg",
       "matplotlib mpl-data/sample_data, US Navy photo NH 96919 (matplotlib PR #1599)", "public domain"),
    _p("china", "a Chinese temple", "scikit-learn", "china.jpg",
       "scikit-learn sklearn/datasets/images, danielbuechele (Flickr 6061409035)", "CC BY 2.0"),
    _p("flower", "a flower, close-up", "scikit-learn", "flower.jpg",
       "scikit-learn sklearn/datasets/images, vultilion (Flickr 6056698931)", "CC BY 2.0"),
    _p("apple", "a red apple", "opencv-doc", "data/apple.jpg", "OpenCV samples", CV_LICENCE),
    _p("orange", "an orange", "opencv-doc", "data/orange.jpg", "OpenCV samples", CV_LICENCE),
    _p("butterfly", "a swallowtail butterfly on a leaf", "opencv-doc", "data/butterfly.jpg", "OpenCV samples",
       CV_LICENCE),
    _p("chicky", "a small long-haired dog", "opencv-doc", "data/chicky_512.png", "OpenCV samples", CV_LICENCE),
    _p("squirrel", "a red squirrel on a branch", "opencv-doc", "data/squirrel_cls.jpg", "OpenCV samples",
       CV_LICENCE),
    _p("smarties", "coloured sweets on white", "opencv-doc", "data/smarties.png", "OpenCV samples", CV_LICENCE),
    _p("stuff", "a lighter, a pen, a coin and lids on a table", "opencv-doc", "data/stuff.jpg", "OpenCV samples",
       CV_LICENCE),
    _p("building", "an office building", "opencv-doc", "data/building.jpg", "OpenCV samples", CV_LICENCE),
    _p("home", "a palace facade under a blue sky", "opencv-doc", "data/home.jpg", "OpenCV samples", CV_LICENCE),
    _p("leuven", "a cobbled street in Leuven", "opencv-doc", "data/leuvenA.jpg", "OpenCV samples", CV_LICENCE),
    _p("aero", "an aerial view of a town", "opencv-doc", "data/aero1.jpg", "OpenCV samples", CV_LICENCE),
    _p("pca_test", "six dark elongated objects on a light box", "opencv-doc", "data/pca_test1.jpg",
       "OpenCV samples", CV_LICENCE),
)
NAMES = tuple(p.name for p in CATALOGUE)
BY_NAME = {p.name: p for p in CATALOGUE}
# photos every machine that runs the benchmark has (scikit-learn comes with the model's extra, see data/README.md)
CORE_NAMES = tuple(p.name for p in CATALOGUE if p.source not in BENCHMARK_ONLY_SOURCES)


def source_folder(source: str) -> Path | None:
    """Where ``source``'s photo files lie, or None when it is not installed (scikit-image: not file based)."""
    if source in ("matplotlib", "scikit-learn"):
        spec = importlib.util.find_spec("matplotlib" if source == "matplotlib" else "sklearn")   # no import
        if spec is None or not spec.submodule_search_locations:
            return None
        sub = "mpl-data/sample_data" if source == "matplotlib" else "datasets/images"
        return Path(list(spec.submodule_search_locations)[0]) / sub
    if source == "opencv-doc":
        return Path(os.environ.get(ENV_OPENCV_EXAMPLES) or OPENCV_EXAMPLES)
    return None


def missing_reason(name: str) -> str | None:
    """None when photo ``name`` loads here; otherwise why not and what to install."""
    photo = _photo(name)
    if photo.source == "scikit-image":
        return None
    folder = source_folder(photo.source)
    path = folder / photo.where if folder else None
    if path is not None and path.is_file():
        return None
    where = f"{path} is missing" if path else f"{photo.source} is not installed"
    return f"photo {name!r} comes from {photo.source} ({where}); install it with: {SOURCES[photo.source]}"


def available_photos(sources=None) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(names that load here, in catalogue order; {missing name: reason and what to install})``.

    ``sources``: only photos from these sources (default: all of :data:`SOURCES`).
    """
    wanted = _check_sources(sources)
    reasons = {p.name: missing_reason(p.name) for p in CATALOGUE if p.source in wanted}
    return tuple(n for n, r in reasons.items() if r is None), {n: r for n, r in reasons.items() if r is not None}


def load_suite_photo(name: str, size: int | None = DEFAULT_SIZE) -> torch.Tensor:
    """One catalogue photo as ``(1, 3, size, size)`` float RGB in [0, 1], resized and center-cropped as
    :func:`actmatch_lite.data.photos.load_photo` does (``size=None``: original size). Grey becomes RGB; the
    few semi-transparent pixels of ``chicky`` (0.4 %) are flattened onto white. A photo whose optional source
    is not installed raises :class:`FileNotFoundError` saying what to install."""
    photo = _photo(name)
    reason = missing_reason(name)
    if reason:
        raise FileNotFoundError(reason)
    if photo.source == "scikit-image":
        raw = getattr(skdata, photo.where)()
    else:
        with Image.open(source_folder(photo.source) / photo.where) as im:
            raw = _flatten(im) if im.has_transparency_data else im.convert("RGB")
    x = to_image_tensor(raw, channels=3)
    return x if size is None else resize_center_crop(x, size)


def suite_photos(size: int = DEFAULT_SIZE, sources=None, n: int | None = None) -> tuple[torch.Tensor, tuple[str, ...]]:
    """``(x (N, 3, size, size), names)``: the first ``n`` (default all) photos that load here, in catalogue order.

    ``n`` larger than what is installed raises an :class:`InputError` naming the missing photos and sources.
    """
    names, missing = available_photos(sources)
    n = len(names) if n is None else n
    if n < 1 or n > len(names):
        lacking = sorted({BY_NAME[m].source for m in missing})
        hint = f"; {len(missing)} more with: " + "; ".join(f"{s}: {SOURCES[s]}" for s in lacking) if missing else ""
        raise InputError(f"asked for {n} suite photos; {len(names)} are available here{hint}")
    names = names[:n]
    return torch.cat([load_suite_photo(p, size) for p in names]), names


def _photo(name: str) -> SuitePhoto:
    if name not in BY_NAME:
        raise InputError(f"unknown suite photo {name!r}; choose one of {', '.join(NAMES)}")
    return BY_NAME[name]


def _check_sources(sources) -> tuple[str, ...]:
    wanted = tuple(SOURCES) if sources is None else tuple(sources)
    unknown = [s for s in wanted if s not in SOURCES]
    if unknown:
        raise InputError(f"unknown photo sources {unknown}; choose from {', '.join(SOURCES)}")
    return wanted


def _flatten(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
