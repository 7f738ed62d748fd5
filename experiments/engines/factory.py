"""Building the engine a study names: `make_engine`, from the table of engines by name.

The engines' modules are imported only when chosen (Keras Tuner is slow to import). Kept apart
from the package's `__init__`, which the engines import for their base class, so naming them here
makes no circle. To add an engine: a module in this package with an `Engine` subclass, its line in
`ENGINES` and its name in `experiments.settings.engine_registry`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.settings.engine_registry import ENGINE_NAMES

if TYPE_CHECKING:
    from experiments.engines import Engine
    from experiments.settings.config import RunConfig
    from experiments.settings.study_spec import StudySpec

# name -> "module:class"; imported only when chosen.
ENGINES = {
    "optuna": "experiments.engines.optuna_engine:OptunaEngine",
    "keras_tuner": "experiments.engines.keras_tuner_engine:KerasTunerEngine",
}
if set(ENGINES) != set(ENGINE_NAMES):
    raise ImportError(
        f"engines listed ({', '.join(ENGINES)}) differ from experiments.settings.engine_registry's "
        f"names ({', '.join(ENGINE_NAMES)})"
    )


def engine_type(name: str) -> type[Engine]:
    """The engine class registered under `name` (its module imported now)."""
    module, _, attribute = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_engine(cfg: RunConfig, spec: StudySpec, study: str, runs_dir: Path) -> Engine:
    """The engine `cfg.engine` names, for stored study `study`."""
    return engine_type(cfg.engine)(cfg, spec, study, runs_dir)
