"""Paste the printed tables into RESULTS.md verbatim, so no number there is ever typed by hand.

    .venv/bin/python benchmarks/paste_tables.py

Every block ``<!-- table:NAME -->`` … ``<!-- /table:NAME -->`` in ``benchmarks/RESULTS.md`` is replaced by the
output that ``benchmarks/run_all.sh NAME`` saved in ``benchmarks/NAME.md`` (a missing file leaves the block as it is
and is reported).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)


def paste(text: str, folder: Path) -> tuple[str, list[str]]:
    """``text`` with every block filled from ``folder/NAME.md``; also the names whose file is missing."""
    missing: list[str] = []

    def fill(match: re.Match) -> str:
        source = folder / f"{match['name']}.md"
        if not source.is_file():
            missing.append(match["name"])
            return match.group(0)
        printed = "\n".join(line for line in source.read_text().splitlines() if not line.startswith("wrote "))
        return f"{match.group(1)}{printed.strip()}\n{match.group(4)}"

    return BLOCK.sub(fill, text), missing


def main() -> int:
    results = HERE / "RESULTS.md"
    text, missing = paste(results.read_text(), HERE)
    results.write_text(text)
    for name in missing:
        print(f"no benchmarks/{name}.md yet: run benchmarks/run_all.sh {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
