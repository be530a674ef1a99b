"""Progress bars show on a terminal or in Jupyter, never in a log (CI, ``| tee``): actmatch_lite.progress."""
from __future__ import annotations

import io
import re
import sys
import types
from pathlib import Path

import pytest

from actmatch_lite import progress
from actmatch_lite.progress import progress_bar, watched

PACKAGE = Path(__file__).resolve().parents[1] / "actmatch_lite"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.setattr(progress, "_in_jupyter", lambda: False)


def _run(stream, steps=50):
    for _ in progress_bar(range(steps), file=stream, mininterval=0, miniters=1):
        pass
    return stream.getvalue()


def test_a_log_file_gets_no_bar():
    assert not watched(io.StringIO())
    assert _run(io.StringIO()) == ""


def test_a_terminal_gets_its_bar():
    assert watched(_Terminal())
    assert "50/50" in _run(_Terminal())


def test_a_disabled_bar_stays_off_on_a_terminal():
    stream = _Terminal()
    for _ in progress_bar(range(3), file=stream, disable=True):
        pass
    assert stream.getvalue() == ""


def test_jupyter_gets_its_bar(monkeypatch):
    monkeypatch.undo()                                     # the real _in_jupyter, with a fake kernel
    monkeypatch.delenv(progress.ENV, raising=False)
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert watched(io.StringIO())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not watched(io.StringIO())                      # plain IPython in a pipe, or no shell at all


@pytest.mark.parametrize(("value", "shown"), [("1", True), ("0", False)])
def test_the_environment_forces_bars_on_or_off(monkeypatch, value, shown):
    monkeypatch.setenv(progress.ENV, value)
    assert watched(io.StringIO()) is shown and watched(_Terminal()) is shown


def test_a_closed_stream_is_not_watched():
    stream = io.StringIO()
    stream.close()
    assert not watched(stream)


def test_every_bar_of_the_package_goes_through_the_helper():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "progress.py":
            continue
        source = path.read_text()
        assert not re.search(r"^\s*(from tqdm|import tqdm)", source, re.M), f"{path}: use progress.progress_bar"
