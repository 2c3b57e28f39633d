"""The install recipes agree with each other: pyproject.toml, environment.yml, scripts/setup.sh."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _env_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    return pip, python.split("=", 1)[1]


def test_environment_installs_the_project_with_existing_extras():
    pip, _ = _env_pip()
    project = [p for p in pip if p.startswith("-e .")]
    assert project, "environment.yml's pip section must install the project (-e .)"
    extras = re.findall(r"\[([^\]]*)\]", project[0])
    declared = set(_pyproject()["optional-dependencies"])
    for extra in (extras[0].split(",") if extras else []):
        assert extra.strip() in declared, f"environment.yml asks for extra {extra!r}; pyproject has {declared}"


def test_environment_python_satisfies_requires_python():
    _, python = _env_pip()
    assert SpecifierSet(_pyproject()["requires-python"]).contains(python + ".0")


def test_torch_pins_agree_and_fit_the_range():
    pip, _ = _env_pip()
    env_torch = next(Requirement(p) for p in pip if p.startswith("torch"))
    setup_pin = re.search(r'TORCH_PIN="([^"]+)"', (ROOT / "scripts" / "setup.sh").read_text()).group(1)
    assert str(env_torch) == setup_pin
    (pinned,) = [s.version for s in env_torch.specifier]
    torch_range = next(Requirement(d) for d in _pyproject()["dependencies"] if d.startswith("torch"))
    assert torch_range.specifier.contains(pinned), f"{pinned} outside pyproject's {torch_range}"


def test_every_dependency_has_a_range():
    for dep in _pyproject()["dependencies"]:
        assert Requirement(dep).specifier, f"{dep} has no version range"
