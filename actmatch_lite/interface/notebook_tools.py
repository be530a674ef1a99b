"""Maintainer tools for the notebooks: execute them in place, and write student copies.

    python -m actmatch_lite notebooks execute notebooks/[0-9]*.ipynb
    python -m actmatch_lite notebooks student notebooks/[0-9]*.ipynb --out student

Solutions live between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines inside exercise cells. Lines of the
block written ``# STUB: <code>`` are the student's skeleton: the student copy replaces the block by those lines
with the ``# STUB: `` prefix removed (each at its own indentation), so ``...`` holes appear where the thinking
goes; a block without STUB lines becomes ``raise NotImplementedError(...)`` at the block's indentation::

    # BEGIN SOLUTION                         # student copy:
    # STUB: return ...  # mean over C, H, W   ->  return ...  # mean over C, H, W
    return m_soft.flatten(1).mean(1)
    # END SOLUTION

Check functions (``actmatch_lite.interface.exercises``) report an unsolved exercise politely instead of
raising, so a student copy runs from top to bottom.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB_PREFIX = "# STUB:"
STUB = 'raise NotImplementedError("Exercise: write your code here")'
KERNEL = "python3"
CELL_TIMEOUT_S = 600


def strip_solutions(source: str) -> str:
    """Replace every ``# BEGIN SOLUTION`` … ``# END SOLUTION`` block of ``source`` with its ``# STUB:`` lines
    (prefix removed, indentation kept), or with an indented ``raise NotImplementedError`` when it has none."""
    out, skipping, stubs, indent = [], False, [], ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if skipping:
                raise ValueError("nested '# BEGIN SOLUTION'")
            skipping, stubs = True, []
            indent = line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if not skipping:
                raise ValueError("'# END SOLUTION' without a matching '# BEGIN SOLUTION'")
            skipping = False
            out.extend(stubs or [f"{indent}{STUB}"])
        elif skipping and stripped.startswith(STUB_PREFIX):
            code = stripped[len(STUB_PREFIX):]
            code = code[1:] if code.startswith(" ") else code
            stubs.append(f"{line[: len(line) - len(line.lstrip())]}{code}".rstrip())
        elif not skipping:
            out.append(line)
    if skipping:
        raise ValueError("'# BEGIN SOLUTION' without a matching '# END SOLUTION'")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    return re.search(rf"^\s*{re.escape(BEGIN)}\s*$", source, re.M) is not None


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions replaced by their STUB skeletons (or a stub) and every output cleared."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
    return nb


def execute(path: Path, *, cwd: Path | None = None, allow_errors: bool = False) -> tuple[nbformat.NotebookNode, float]:
    """Run ``path`` top to bottom in a fresh kernel; return the executed notebook and the seconds taken."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # wall-clock stamps would churn every commit
    return nb, seconds


def execute_in_place(paths: list[Path]) -> list[tuple[str, float]]:
    """Execute each notebook top to bottom in a fresh kernel and write it back; ``[(name, seconds)]``."""
    rows = []
    for path in sorted(paths):
        nb, seconds = execute(path)
        nbformat.write(nb, path)
        rows.append((path.name, seconds))
        print(f"{path.name}: {seconds:.0f} s", flush=True)
    return rows


def write_student_copies(paths: list[Path], out: Path) -> list[Path]:
    """Write each notebook's student copy (solutions stubbed) to ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(paths):
        nbformat.write(student_copy(nbformat.read(path, as_version=4)), out / path.name)
        written.append(out / path.name)
    return written
