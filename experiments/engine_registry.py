"""The search engines by name: what `engine=` allows, and building the chosen one.

Names only, imported without the engines themselves (Keras Tuner is slow to import), so the
configuration can check `engine=` without depending on what it names. To add an engine, write a
module in `experiments/engines/` with an `Engine` subclass and add its name here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.config import RunConfig
    from experiments.engines import Engine
    from experiments.study_spec import StudySpec

# name -> "module:class"; imported only when chosen.
ENGINES = {
    "optuna": "experiments.engines.optuna_engine:OptunaEngine",
    "keras_tuner": "experiments.engines.keras_tuner_engine:KerasTunerEngine",
}
ENGINE_NAMES = tuple(ENGINES)
ENGINE_ALIASES = ("tuner",)  # the key's earlier name, still taken (with a note)


def engine_type(name: str) -> type[Engine]:
    """The engine class registered under `name` (its module imported now)."""
    module, _, attribute = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_engine(cfg: RunConfig, spec: StudySpec, study: str, runs_dir: Path) -> Engine:
    """The engine `cfg.engine` names, for stored study `study`."""
    return engine_type(cfg.engine)(cfg, spec, study, runs_dir)
