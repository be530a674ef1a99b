"""The package's layers (docs/ARCHITECTURE.md): each module imports only its own layer and the layers below it,
and no two modules import each other, directly or through others. Read from the source, so it holds for imports
inside functions too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "actmatch_lite"
# lowest first; a module may import its own layer and every layer before it
LAYERS = ("base", "method", "zoo", "evaluation", "interface")
BASE = {"_validate", "paths", "seeding", "spec", "checksums", "progress"}
ZOO = {"data", "models"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str | None:
    """The layer of ``actmatch_lite.X...``; None for the package's own ``__init__`` and ``__main__`` (the public
    API and the entry point sit above every layer)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return None
    top = parts[1]
    if top in BASE:
        return "base"
    return "zoo" if top in ZOO else top if top in LAYERS else "unknown"


def imports(module: str) -> set[str]:
    """Every ``actmatch_lite`` module that ``module`` imports, at the top or inside a function."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module:
                found.add(name)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_belongs_to_a_layer():
    assert [m for m in MODULES if layer(m) == "unknown"] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) is not None))
def test_a_module_imports_only_its_layer_and_the_layers_below(module):
    mine = LAYERS.index(layer(module))
    upward = sorted(dep for dep in GRAPH[module] if layer(dep) is not None and LAYERS.index(layer(dep)) > mine)
    assert upward == [], f"{module} ({layer(module)}) imports a higher layer: {upward}"


def test_no_import_cycles():
    # a package's __init__ importing its own submodules is how a package is built, not a cycle
    edges = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in edges[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_no_module_but_the_cli_parses_arguments():
    parsers = [m for m, p in MODULES.items() if "argparse" in p.read_text() and m != "actmatch_lite.interface.cli"]
    assert parsers == []
