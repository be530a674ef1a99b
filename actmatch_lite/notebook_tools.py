"""Maintainer tools for the notebooks: execute them in place, and write student copies.

    python -m actmatch_lite.notebook_tools execute notebooks/[0-9]*.ipynb
    python -m actmatch_lite.notebook_tools student notebooks/[0-9]*.ipynb --out student

Solutions live between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines inside exercise cells; the
student copy replaces each such block with a stub that raises ``NotImplementedError``, at the block's
indentation. Check functions (``actmatch_lite.exercises``) report an unsolved exercise politely instead of
raising, so a student copy runs from top to bottom.
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import nbformat

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = 'raise NotImplementedError("your code here")'
KERNEL = "python3"
CELL_TIMEOUT_S = 600


def strip_solutions(source: str) -> str:
    """Replace every ``# BEGIN SOLUTION`` … ``# END SOLUTION`` block of ``source`` with an indented stub."""
    out, skipping = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if skipping:
                raise ValueError("nested '# BEGIN SOLUTION'")
            skipping = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}")
        elif stripped == END:
            if not skipping:
                raise ValueError("'# END SOLUTION' without a matching '# BEGIN SOLUTION'")
            skipping = False
        elif not skipping:
            out.append(line)
    if skipping:
        raise ValueError("'# BEGIN SOLUTION' without a matching '# END SOLUTION'")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    return re.search(rf"^\s*{re.escape(BEGIN)}\s*$", source, re.M) is not None


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions stubbed and every output cleared."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
    return nb


def execute(path: Path, *, cwd: Path | None = None, allow_errors: bool = False) -> tuple[nbformat.NotebookNode, float]:
    """Run ``path`` top to bottom in a fresh kernel; return the executed notebook and the seconds taken."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # wall-clock stamps would churn every commit
    return nb, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actmatch_lite.notebook_tools")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in place, top to bottom")
    run.add_argument("notebooks", nargs="+", type=Path)
    stu = sub.add_parser("student", help="write student copies with solutions stubbed")
    stu.add_argument("notebooks", nargs="+", type=Path)
    stu.add_argument("--out", type=Path, default=Path("student"))
    args = parser.parse_args(argv)

    if args.command == "execute":
        rows = []
        for path in sorted(args.notebooks):
            nb, seconds = execute(path)
            nbformat.write(nb, path)
            rows.append((path.name, seconds))
            print(f"{path.name}: {seconds:.0f} s", flush=True)
        print(f"total: {sum(s for _, s in rows):.0f} s")
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in sorted(args.notebooks):
            nb = nbformat.read(path, as_version=4)
            nbformat.write(student_copy(nb), args.out / path.name)
            print(f"wrote {args.out / path.name}")


if __name__ == "__main__":
    main()
