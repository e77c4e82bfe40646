"""The house's shape, kept by a test: every package imports only from its own layer or below, and no
two modules import each other (docs/DESIGN.md draws the layers).

Imports are read from the source (ast), every `import` statement wherever it stands, lazy ones in
functions included: a lazy import upward is still an upward dependency.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# Bottom to top. A module may import from its own layer or any layer before it.
LAYERS = ["core", "configuration", "probes", "checks", "decision", "remediations", "alerts", "reports",
          "plugin", "commands"]
# The stand-in host and the suite's own tooling sit beside the suite, not in it.
OUTSIDE = {"lab": set(), "tests": set(LAYERS) | {"lab"}, "bench": set(LAYERS) | {"lab"}}


def modules() -> dict[str, Path]:
    found = {}
    for package in [*LAYERS, *OUTSIDE]:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path, name: str) -> set[str]:
    """Every module named by an import in the file, resolved against the project's own modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


@functools.cache
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {other for other in imported(path, name) if other in known and other != name}
            for name, path in known.items()}


def layer_of(module: str) -> str:
    return module.split(".")[0]


def test_every_package_of_the_suite_is_in_a_layer():
    top = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert top <= set(LAYERS) | set(OUTSIDE), f"packages in no layer: {sorted(top - set(LAYERS) - set(OUTSIDE))}"


@pytest.mark.parametrize("layer", [*LAYERS, *OUTSIDE])
def test_layer_imports_only_downwards(layer):
    allowed = set(LAYERS[: LAYERS.index(layer) + 1]) if layer in LAYERS else OUTSIDE[layer] | {layer}
    upward = sorted(f"{module} imports {other}" for module, others in graph().items() if layer_of(module) == layer
                    for other in others if layer_of(other) not in allowed)
    assert not upward, f"{layer} reaches above itself:\n" + "\n".join(upward)


def test_no_two_modules_import_each_other():
    edges = graph()
    loops = sorted({tuple(sorted((a, b))) for a, others in edges.items() for b in others
                    if a in edges.get(b, set()) and not _is_package_of(a, b)})
    assert not loops, "modules that import each other (move the shared part down): " + ", ".join(
        f"{a} <-> {b}" for a, b in loops)


def _is_package_of(a: str, b: str) -> bool:
    """A package's __init__ importing its own submodule, which imports a sibling through the package,
    is how Python packages work, not a loop of two ideas."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_the_bottom_layer_imports_no_stage():
    stages = set(LAYERS) - {"core"}
    reached = sorted(f"{module} imports {other}" for module, others in graph().items()
                     if layer_of(module) == "core" for other in others if layer_of(other) in stages)
    assert not reached, "\n".join(reached)


def third_party(path: Path) -> set[str]:
    """The top-level names of what a file imports that is neither the project's nor the standard library's."""
    ours = set(LAYERS) | set(OUTSIDE)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name not in ours and name not in sys.stdlib_module_names}


def test_the_readers_that_travel_to_the_box_need_the_standard_library_only():
    """probes/remote runs on the box's python3 -I -S: no package of the monitoring host's venv is there, and of the
    suite only the core modules that travel with them (REMOTE_NEEDS), themselves of the standard library only."""
    known = modules()
    remote = [name for name in known if name.startswith("probes.remote.")]
    assert len(remote) >= 10, remote
    for name in remote:
        assert not third_party(known[name]), f"{name} imports {sorted(third_party(known[name]))}"
        outside = sorted(other for other in graph()[name] if not other.startswith(("core.", "probes.remote")))
        assert not outside, f"{name} imports the suite's {outside}: only core modules travel with it"
    travelling = {other for name in remote for other in graph()[name] if other.startswith("core.")}
    for name in sorted(travelling):
        assert not third_party(known[name]), f"{name} travels to the box but imports {sorted(third_party(known[name]))}"


def test_probes_are_a_library_that_needs_no_pytest():
    """Commands, remediations and a long-running watch use the probes; only plugin/fixtures.py hands them to
    checks. A probe that imports pytest, or a non-plugin module that takes the fixtures, breaks that."""
    known = modules()
    with_pytest = sorted(name for name in known if name.startswith("probes") and "pytest" in third_party(known[name]))
    assert not with_pytest, f"probes that import pytest: {with_pytest}"
    takers = sorted(name for name, others in graph().items() if "plugin.fixtures" in others
                    and layer_of(name) not in ("plugin", "tests", "bench"))
    assert not takers, f"modules outside the plugin that import its fixtures: {takers}"


def test_an_upward_import_is_caught(tmp_path):
    """The contract can fail: a probe importing the glue is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("from plugin import flow\n")
    assert "plugin" in {layer_of(m) for m in imported(probe, "probes.probe")}


def test_a_reader_that_needs_a_package_is_caught(tmp_path):
    """The box-side contract can fail: a reader importing a package of the venv (or pytest) is named."""
    reader = tmp_path / "reader.py"
    reader.write_text("import json\nimport psycopg\nfrom pytest import fixture\nfrom core import safepath\n")
    assert third_party(reader) == {"psycopg", "pytest"}
