"""The report's comparisons, one module per study kind, each owning its table(s), its verdicts
on the paper's findings and how its figures group trials:

- `optimizers`: the paper's first result (Adamax, Adam, RMSprop over seeds);
- `epochs`: the paper's second result (budgets 100/500/600/1000);
- `architecture`: kernel size x padding x strides, with infeasible combinations;
- `losses`: regression against classification (the heads) over seeds;
- `pareto`: a study of several objectives: its Pareto front (plot, table, sample strips);
- `generic`: any other search space.

A study's kind follows from its objectives (several: `pareto`), else from what it searches (seeds
aside). To add a comparison, write a module with `tables`, `verdicts` and `grouping`, and register
it in `KINDS`. A module may also define `figures_of(stored, folder)` (its own figure pages:
[(title, subtitle, PNG)]) and `samples(stored)` (the sample-strip page: its title and
[(caption, run id)]), which replace the best trial per group.
"""

from __future__ import annotations

from types import ModuleType

from experiments.report.comparisons import (
    architecture,
    epochs,
    generic,
    losses,
    optimizers,
    pareto,
)
from experiments.report.comparisons.settings import searched_settings
from experiments.report.stored_study import StoredStudy

KINDS: dict[str, ModuleType] = {
    "optimizers": optimizers,
    "epochs": epochs,
    "architecture": architecture,
    "losses": losses,
    "pareto": pareto,
    "generic": generic,
}
ARCHITECTURE_SPACE = {"kernel_size", "padding", "strides"}


def kind_of(stored: StoredStudy) -> str:
    if stored.is_multi:
        return "pareto"
    names = searched_settings(stored)
    if names == ["optimizer"]:
        return "optimizers"
    if names == ["epochs"]:
        return "epochs"
    if names == ["loss"]:
        return "losses"
    if names and set(names) <= ARCHITECTURE_SPACE:
        return "architecture"
    return "generic"


def comparison_for(stored: StoredStudy) -> ModuleType:
    return KINDS[kind_of(stored)]
