"""The demo (``python -m actmatch_lite demo``) on its bundled defaults: every case gives its rows, none is skipped."""
from __future__ import annotations

import pytest

from actmatch_lite.interface import demo

FAST_CASES = [name for name in demo.CASES if name != "photo"]   # the photo takes about half a minute on 2 cores


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "canvas" else n for n in FAST_CASES])
def test_no_demo_row_is_skipped(name, tmp_path):
    rows = demo.CASES[name](tmp_path)
    assert rows and [r for r in rows if "skipped" in r] == [], rows
    assert all(r["sufficiency"] for r in rows) and all(0 < r["area"] < 1 for r in rows)


def test_run_writes_one_row_per_case(tmp_path, monkeypatch):
    """``run_demo`` goes through :data:`demo.CASES` in order (stubbed here), so the test above covers every case."""
    assert FAST_CASES == ["shape", "fmnist", "canvas"] and list(demo.CASES)[-1] == "photo"
    stub = {name: (lambda out, name=name: [{"input": name, "model": "m", "skipped": "stub"}]) for name in demo.CASES}
    monkeypatch.setattr(demo, "CASES", stub)
    rows, table = demo.run_demo(tmp_path)
    assert [r["input"] for r in rows] == list(stub) and table in (tmp_path / "summary.md").read_text()
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert [line.split(" | ")[0][2:] for line in lines[2:]] == list(stub)
