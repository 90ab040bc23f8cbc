"""The house follows the data: every import points down the layers, and no module imports
itself back through others. Read from the code's own imports (any depth, so an import
delayed into a function to dodge a cycle counts too).

    history      request records, fault events, observations, their streams
    vocabulary   the properties, verdict, config (topology, evidence, ssh), fault kinds,
                 thresholds, run state
    checks       pure functions of the history -> verdicts; the judge, the nemesis, plots,
                 saturation (a stepped load's steps judged)
    traffic      clients and Locust users writing history; faults: engines writing history
    cluster      backends behind one interface, roles as small classes
    world        one run's cluster, history, injector, clients, evidence, victims; the soak;
                 scaling (C13's searches, shared by its scenario and `harness scalability`)
    entry        pytest plugin, CLI, probe, init (and the containers it finds), control, scalability,
                 contract (`clusterproof run`), image (the harness's own container image),
                 dryrun (`--plan`: the faults a run would inject, listed)

The reference node (`harness.sut`) is the system under test: it stands apart and imports
no harness client.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("history", ("harness.errors", "harness.model", "harness.history", "harness.version")),
    ("vocabulary", ("harness.properties", "harness.verdict", "harness.config", "harness.evidence",
                    "harness.commands", "harness.ssh", "harness.commandline", "harness.secrets", "harness.tls", "harness.mutants",
                    "harness.thresholds", "harness.fault_kinds", "harness.runstate")),
    ("checks", ("harness.checks", "harness.judge", "harness.nemesis", "harness.victims",
                "harness.report", "harness.saturation")),
    ("traffic", ("harness.traffic", "harness.kernel", "harness.toxiproxy", "harness.injector")),
    ("cluster", ("harness.cluster",)),
    ("world", ("harness.world", "harness.soak", "harness.scaling", "harness.safety")),
    ("entry", ("harness.plugin", "harness.cli", "harness.components", "harness.probe", "harness.init",
               "harness.containers", "harness.control", "harness.contract", "harness.image", "harness.dryrun",
               "harness.scalability", "harness.__init__")),
]
APART = ("harness.sut",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def harness_imports(path: Path) -> set[str]:
    """Every `harness...` module the file imports, wherever the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = {module_name(p): p for p in (ROOT / "harness").rglob("*.py")}


def known(name: str) -> str | None:
    """The module of ours that an imported name is (a name imported from a module is not)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def layer_of(module: str) -> int:
    for level, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} is on no layer of tests/test_layers.py: place it")


GRAPH = {m: {t for name in harness_imports(p) if (t := known(name)) and t != m}
         for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith(APART)))
def test_imports_point_down_the_layers(module):
    up = [f"{t} ({LAYERS[layer_of(t)][0]})" for t in sorted(GRAPH[module])
          if not t.startswith(APART) and layer_of(t) > layer_of(module)]
    assert not up, f"{module} ({LAYERS[layer_of(module)][0]}) imports from above: {up}"


def test_no_module_imports_itself_back():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                raise AssertionError("circle: " + " -> ".join([*path[path.index(target):], target]))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_history_stands_on_nothing_but_errors():
    for module in (m for m in MODULES if m.startswith("harness.history")):
        assert GRAPH[module] <= {"harness.errors"} | {m for m in MODULES if m.startswith("harness.history")}, module


def test_checks_read_only_the_history_the_verdict_and_the_config():
    allowed = ("harness.history", "harness.verdict", "harness.config", "harness.properties",
               "harness.errors")
    assert all(t.startswith(allowed) for t in GRAPH["harness.checks"]), GRAPH["harness.checks"]


def test_the_reference_node_uses_no_harness_client_and_nothing_above_it():
    for module in (m for m in MODULES if m.startswith("harness.sut")):
        outside = {t for t in GRAPH[module] if not t.startswith("harness.sut")}
        assert not {t for t in outside if t.startswith("harness.traffic")}, module
        assert all(layer_of(t) <= 1 for t in outside), (module, outside)


def test_every_package_of_the_tree_ships():
    """pyproject lists the packages by name: one left out installs without it (the wheel's
    `import harness.world` failed once, caught only by the slow tests of the package)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "harness").rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
