"""The shape of the code: no import circle, no import that runs back up the harness's layers,
and a library that never imports the harness, Optuna or MLflow."""

from __future__ import annotations

import grimp
import pytest

# experiments/, top to bottom: a module may import its own layer and those below it, never one
# above. Imports inside functions count; imports only for type checkers do not (they never run).
LAYERS = [
    ["experiments.run", "experiments.ui", "experiments.report", "experiments.humantest"],
    ["experiments.study"],
    ["experiments.finish", "experiments.model_aliases", "experiments.pareto_finish"],
    ["experiments.engines"],
    ["experiments.trial_runner"],
    [
        "experiments.tracking",
        "experiments.fingerprint",
        "experiments.data",
        "experiments.trial_figures",
    ],
    ["experiments.model_registry", "experiments.serving"],
    ["experiments.study_spec"],
    ["experiments.config"],
    [
        "experiments.engine_registry",
        "experiments.links",
        "experiments.overrides",
        "experiments.records",
        "experiments.store_urls",
        "experiments.store_locks",
        "experiments.provenance",
        "experiments.liveness",
        "experiments.heartbeats",
        "experiments.workers",
        "experiments.ranking",
        "experiments.pareto",
        "experiments.errors",
        "experiments.telemetry",
        "experiments.redact",
    ],
    ["colorize"],
]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(
        "experiments",
        "colorize",
        include_external_packages=True,
        exclude_type_checking_imports=True,
    )


def _layer(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
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


def test_no_import_runs_back_up_the_layers(graph):
    upward = []
    for module in sorted(graph.modules):
        mine = _layer(module)
        if mine is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            theirs = _layer(imported)
            if theirs is not None and theirs < mine:
                upward.append(f"{module} -> {imported}")
    assert upward == []


def test_the_library_imports_neither_the_harness_nor_optuna_nor_mlflow(graph):
    library = [m for m in graph.modules if m == "colorize" or m.startswith("colorize.")]
    bad = [
        f"{module} -> {imported}"
        for module in library
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] in ("experiments", "optuna", "mlflow", "optuna_integration")
    ]
    assert bad == []
