"""The photo suite's catalogue and loader (actmatch_lite.data.photo_suite): licences, shapes, optional sources."""
from __future__ import annotations

import pytest
import torch

from actmatch_lite._validate import InputError
from actmatch_lite.data import photo_suite as ps
from actmatch_lite.evaluation.suites import get_suite, load_suite_data, photo_records

INSTALLED, MISSING = ps.available_photos()
needs_opencv = pytest.mark.skipif("apple" not in INSTALLED,
                                  reason="Debian's opencv-doc is not installed (benchmark-only source)")


def test_catalogue_has_24_photos_each_with_a_source_and_licence():
    assert len(ps.CATALOGUE) >= 24 and len(set(ps.NAMES)) == len(ps.NAMES)
    for p in ps.CATALOGUE:
        assert p.shows and p.credit and p.licence and p.where, p
        assert p.source in ps.SOURCES, p


def test_core_photos_come_first_and_opencv_doc_is_optional_and_benchmark_only():
    sources = [p.source for p in ps.CATALOGUE]
    assert sources.index("opencv-doc") == len(ps.CORE_NAMES)
    assert all(s == "opencv-doc" for s in sources[len(ps.CORE_NAMES):])
    assert "opencv-doc" in ps.OPTIONAL_SOURCES and ps.BENCHMARK_ONLY_SOURCES == ("opencv-doc",)
    assert ps.NAMES[:6] == ("chelsea", "coffee", "rocket", "astronaut", "horse", "camera")   # the former suite


def test_core_dependency_photos_load_here():
    assert {p.name for p in ps.CATALOGUE if p.source in ("scikit-image", "matplotlib")} <= set(INSTALLED)


@pytest.mark.parametrize("name", INSTALLED)
def test_every_installed_photo_loads_as_rgb_in_unit_range(name):
    x = ps.load_suite_photo(name)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.std()) > 0.01


def test_a_missing_optional_source_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(ps.ENV_OPENCV_EXAMPLES, str(tmp_path / "nowhere"))
    names, missing = ps.available_photos()
    assert "apple" not in names and "opencv-doc is" not in missing["apple"]
    assert "comes from opencv-doc" in missing["apple"] and "apt-get install opencv-doc" in missing["apple"]
    with pytest.raises(FileNotFoundError, match="apt-get install opencv-doc"):
        ps.load_suite_photo("apple")
    with pytest.raises(InputError, match="opencv-doc"):
        ps.suite_photos(n=len(ps.NAMES))


def test_a_missing_python_package_says_what_to_install(monkeypatch):
    real = ps.importlib.util.find_spec
    monkeypatch.setattr(ps.importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    reason = ps.missing_reason("china")
    assert "scikit-learn is not installed" in reason and "pip install scikit-learn" in reason
    assert "china" not in ps.available_photos(["scikit-learn"])[0]


def test_unknown_names_and_sources_are_refused():
    with pytest.raises(InputError, match="unknown suite photo"):
        ps.load_suite_photo("lena")
    with pytest.raises(InputError, match="unknown photo sources"):
        ps.available_photos(["flickr"])


def test_suite_photos_are_deterministic_and_in_catalogue_order():
    x1, n1 = ps.suite_photos(size=64, n=4)
    x2, n2 = ps.suite_photos(size=64, n=4)
    assert n1 == n2 == ps.NAMES[:4] and torch.equal(x1, x2) and x1.shape == (4, 3, 64, 64)


def test_the_photos_suite_loads_from_the_catalogue():
    suite = get_suite("photos")
    assert suite.default_n == len(ps.CORE_NAMES)
    d = load_suite_data(suite, 3, seed=101)
    assert d.names == ps.NAMES[:3] and d.x.shape == (3, 3, 224, 224) and d.gt is None
    with pytest.raises(InputError, match="available here"):
        load_suite_data(suite, len(INSTALLED) + 1, seed=101)


def test_the_photos_suite_takes_photos_by_name():
    suite = get_suite("photos")
    d = load_suite_data(suite, 2, seed=101, photos=("coffee", "camera"))
    assert d.names == ("coffee", "camera")
    assert torch.equal(d.x, torch.cat([ps.load_suite_photo("coffee"), ps.load_suite_photo("camera")]))
    with pytest.raises(InputError, match="2 photos are named"):
        load_suite_data(suite, 3, seed=101, photos=("coffee", "camera"))
    with pytest.raises(InputError, match="unknown suite photo 'cofee'"):
        load_suite_data(suite, 1, seed=101, photos=("cofee",))
    with pytest.raises(InputError, match="not of 'shapes'"):
        load_suite_data(get_suite("shapes"), 1, seed=101, photos=("coffee",))


@needs_opencv
def test_opencv_doc_photos_load_when_installed():
    x, names = ps.suite_photos(size=32)
    assert names == ps.NAMES and x.shape == (len(ps.NAMES), 3, 32, 32)


def test_photo_records_give_top1_probability_and_confidence():
    class Fixed:   # a stand-in model: predict returns (classes, probabilities)
        class_names = ["cat", "dog"]

        def predict(self, x):
            return torch.tensor([1, 0]), torch.tensor([0.5, 0.2])

    recs = photo_records(Fixed(), torch.zeros(2, 3, 8, 8), ("a", "b"))
    assert recs == [{"name": "a", "top1": 1, "class_name": "dog", "p": 0.5, "confident": True},
                    {"name": "b", "top1": 0, "class_name": "cat", "p": pytest.approx(0.2), "confident": False}]
