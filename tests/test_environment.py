"""The three descriptions of the environment (pyproject, lock, environment.yml, Makefile) must agree."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"lock line {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def _all_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for group in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in group]
    return reqs


def test_lock_pins_every_dependency_inside_its_pyproject_range():
    pins = _lock()
    for req in _all_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not pinned in requirements.lock (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's range {req.specifier}")


def test_lock_pins_the_torch_builds_that_install_offline():
    pins = _lock()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_uses_the_lock_and_the_same_extras_and_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    version = python.split("=", 1)[1]
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert requires.contains(f"{version}.0"), f"environment.yml's python={version} is outside {requires}"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements.lock" in pip_section
    extras = set(_pyproject()["project"]["optional-dependencies"])
    editable = next(p for p in pip_section if p.startswith("-e ."))
    assert set(re.search(r"\[(.*)\]", editable).group(1).split(",")) == extras


def test_makefile_and_ci_call_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)
    assert "-r requirements.lock" in (ROOT / "Makefile").read_text()


def test_the_readme_quick_use_code_runs():
    """The README's first python block is what new users paste: it must run as written (shipped files only)."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["ex"].mask.shape == (8, 1, 64, 64) and len(namespace["res"].masks) == 2
