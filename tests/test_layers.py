"""The architecture as the code must keep it (docs/architecture.md draws it).

- Layers point one way: the library (``workbench`` outside ``workbench.cli``) never imports the
  CLI or the app; the app never imports the CLI.
- What two modules share is public in the module that owns it: no module imports another module's
  ``_private`` name.
- Files stay readable: no source file over 600 lines.

Read with ``ast`` (imports inside functions count too), so nothing is executed.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("workbench", "apps") for p in (ROOT / folder).rglob("*.py"))
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in SOURCES}


def imports(path: Path, own: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every import statement in ``path``, the
    source of module ``own``."""
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: resolve it against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.append((node.lineno, base, [a.name for a in node.names]))
    return out


def private_imports(path: Path, own: str) -> list[str]:
    found = []
    for line, module, names in imports(path, own):
        if module == "__future__":
            continue
        for name in names:
            if name.startswith("_") and not name.startswith("__") and module != own:
                found.append(f"{own}:{line}: imports {name} from {module}")
        if any(part.startswith("_") and not part.startswith("__") for part in module.split(".")):
            found.append(f"{own}:{line}: imports the private module {module}")
    return found


# Lowest first; a module may import its own layer and the layers below it (docs/architecture.md).
LAYERS = (
    ("workbench.errors", "workbench.config", "workbench.attention", "workbench.prepacked",
     "workbench.models", "workbench.templates",
     "workbench.tasks", "workbench.rewards", "workbench.sandbox", "workbench.runlog", "workbench.lab",
     "workbench.distributed", "workbench.cost"),  # building blocks
    ("workbench.analysis",),
    ("workbench.lifecycle",),
    ("workbench.grpo",),
    ("workbench.stages", "workbench.lab.experiment"),
    ("workbench.cli", "workbench.__main__", "workbench", "apps"),  # interface (and the package's own entry)
)


def layer(module: str) -> int | None:
    """Index in LAYERS of the longest prefix that names ``module``; None outside the project."""
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return best and best[0]


def upward_imports(path: Path, own: str) -> list[str]:
    found = []
    for line, module, names in imports(path, own):
        # "from workbench.grpo import trainer" imports the module workbench.grpo.trainer;
        # "from workbench.grpo import fast_step" takes a name from workbench.grpo.
        targets = [f"{module}.{n}" if f"{module}.{n}" in MODULES else module for n in names] or [module]
        above = [t for t in targets if layer(t) is not None and layer(t) > layer(own)]
        if above:
            found.append(f"{own}:{line}: imports {above[0]} (a layer above)")
    return found


def test_sources_were_found():
    names = {module_name(p) for p in SOURCES}
    assert {"workbench.cli", "workbench.grpo.trainer", "workbench.lifecycle", "apps.app"} <= names


def test_no_module_imports_another_modules_private_names():
    found = [f for p in SOURCES for f in private_imports(p, module_name(p))]
    assert not found, "\n".join(found)


def test_layers_point_one_way():
    found = [f for p in SOURCES for f in upward_imports(p, module_name(p))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_files_stay_under_600_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by responsibility"


def test_the_checks_see_what_they_forbid(tmp_path):
    # The checks themselves, on a library module written to break each rule.
    bad = tmp_path / "probe.py"
    bad.write_text("from workbench.grpo.trainer import _hidden\nfrom workbench.cli import main\n"
                   "def f():\n    from apps import app\n    from ..grpo import _fast\n")
    assert private_imports(bad, "workbench.stages.probe") == [
        "workbench.stages.probe:1: imports _hidden from workbench.grpo.trainer",
        "workbench.stages.probe:5: imports _fast from workbench.grpo"]
    assert upward_imports(bad, "workbench.stages.probe") == [
        "workbench.stages.probe:2: imports workbench.cli (a layer above)",
        "workbench.stages.probe:4: imports apps.app (a layer above)"]
    assert upward_imports(bad, "workbench.cli.probe") == []
    assert upward_imports(bad, "workbench.rewards.probe") == [
        "workbench.rewards.probe:1: imports workbench.grpo.trainer (a layer above)",
        "workbench.rewards.probe:2: imports workbench.cli (a layer above)",
        "workbench.rewards.probe:4: imports apps.app (a layer above)",
        "workbench.rewards.probe:5: imports workbench.grpo (a layer above)"]


def test_every_project_import_resolves():
    # A name imported from a project module (at the top or inside a function) exists there: a moved
    # function is caught here, not when a rarely run verb first imports it.
    import importlib

    missing = []
    for path in SOURCES:
        own = module_name(path)
        for line, module, names in imports(path, own):
            if module.split(".")[0] not in ("workbench", "apps"):
                continue
            target = importlib.import_module(module)
            for name in names:
                if name != "*" and not hasattr(target, name) and f"{module}.{name}" not in MODULES:
                    missing.append(f"{own}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)
