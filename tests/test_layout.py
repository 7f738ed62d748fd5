"""The shape of the code: no import circle, no import that runs back up the harness's layers,
and a library that never imports the harness, Optuna or MLflow. Every kind of dependency
counts: imports inside functions, imports only for type checkers (a circle there is a circle in
the design, and breaks the first time one of them runs) and the `"module:attr"` strings a
registry imports by name."""

from __future__ import annotations

import importlib.util
import re

import grimp
import pytest

# experiments/, top to bottom, a package by role on each floor: a module may import its own floor
# and those below it, never one above.
LAYERS = [
    ["experiments.run", "experiments.ui", "experiments.report", "experiments.humantest"],
    ["experiments.flow"],  # a study's run and its end
    ["experiments.engines"],  # who chooses each trial's values
    ["experiments.trials"],  # one trial: settings -> model -> fit -> metrics; photos, figures
    ["experiments.tracking"],  # every MLflow write
    ["experiments.registry", "experiments.serving"],  # the best models; serving them
    ["experiments.settings"],  # the schema, study files, the fingerprint
    ["experiments.stores"],  # store URLs, locks, liveness, workers
    ["experiments.analysis"],  # best over seeds, the Pareto front
    ["experiments.common"],  # names and small tools
    ["colorize"],
]


def registry_strings(module: str, packages: tuple[str, ...]) -> set[str]:
    """The modules of `packages` that `module` names in a `"package.module:attr"` string (a
    registry imports them by name)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return set()
    names = "|".join(re.escape(package) for package in packages)
    pattern = re.compile(rf"""["']((?:{names})(?:\.\w+)*):\w+["']""")
    with open(spec.origin, encoding="utf-8") as handle:
        return set(pattern.findall(handle.read()))


def import_graph(*packages: str):
    """The import graph of `packages`: every import, those for type checkers too, plus an edge
    for each registry string."""
    graph = grimp.build_graph(
        *packages, include_external_packages=True, exclude_type_checking_imports=False,
        cache_dir=None,
    )  # fmt: skip
    for module in sorted(m for m in graph.modules if m.split(".")[0] in packages):
        for target in registry_strings(module, packages) - {module}:
            graph.add_import(importer=module, imported=target)
    return graph


@pytest.fixture(scope="module")
def graph():
    return import_graph("experiments", "colorize")


def _layer(module: str, layers: list[list[str]] = LAYERS) -> int | None:
    for index, layer in enumerate(layers):
        if any(module == entry or module.startswith(entry + ".") for entry in layer):
            return index
    return None


def _cycles(graph, modules: list[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.find_modules_directly_imported_by(node):
            if other not in modules:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_the_house_has_no_import_circle(graph):
    ours = sorted(m for m in graph.modules if m.startswith(("experiments", "colorize")))
    assert _cycles(graph, ours) == []


def test_every_module_of_experiments_has_a_layer(graph):
    placed = [m for m in graph.modules if m.startswith("experiments.")]
    assert [m for m in placed if _layer(m) is None] == []


def _upward(graph, layers: list[list[str]]) -> list[str]:
    """Each import from a module to one on a layer above it."""
    upward = []
    for module in sorted(graph.modules):
        mine = _layer(module, layers)
        if mine is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            theirs = _layer(imported, layers)
            if theirs is not None and theirs < mine:
                upward.append(f"{module} -> {imported}")
    return upward


def test_no_import_runs_back_up_the_layers(graph):
    assert _upward(graph, LAYERS) == []


def test_the_engines_registry_string_is_seen_and_stays_with_the_engines(graph):
    named = {"experiments.engines.optuna_engine", "experiments.engines.keras_tuner_engine"}
    assert registry_strings("experiments.engines.factory", ("experiments",)) == named
    assert named <= graph.find_modules_directly_imported_by("experiments.engines.factory")
    assert (
        registry_strings("experiments.settings.engine_registry", ("experiments",)) == set()
    )  # names


def _package(root, name: str, modules: dict[str, str]) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / name / f"{module}.py").write_text(text)


def test_the_check_finds_a_circle_through_type_checking_or_a_registry_string(
    tmp_path, monkeypatch
):
    _package(tmp_path, "hidden_circle", {
        "config": "from hidden_circle import engines\n",
        "engines": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from hidden_circle import config\n",
    })  # fmt: skip
    _package(tmp_path, "named_circle", {
        "low": 'ENGINES = {"one": "named_circle.high:Engine"}\n',
        "high": "from named_circle import low\n\nclass Engine: ...\n",
    })  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("hidden_circle", "named_circle")
    modules = sorted(m for m in graph.modules if m.startswith(("hidden_", "named_")))
    assert _cycles(graph, modules) == [
        ["hidden_circle.config", "hidden_circle.engines"],
        ["named_circle.high", "named_circle.low"],
    ]
    layers = [["named_circle.high"], ["named_circle.low"]]
    assert _upward(graph, layers) == ["named_circle.low -> named_circle.high"]


def test_the_library_imports_neither_the_harness_nor_optuna_nor_mlflow(graph):
    library = [m for m in graph.modules if m == "colorize" or m.startswith("colorize.")]
    bad = [
        f"{module} -> {imported}"
        for module in library
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] in ("experiments", "optuna", "mlflow", "optuna_integration")
    ]
    assert bad == []
