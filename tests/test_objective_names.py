"""optuna-dashboard shows each objective by name ("val_loss", not "Objective 0"), as stored."""

from __future__ import annotations

import optuna
import pytest

from experiments.engines.optuna_engine import name_objectives

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def test_objectives_are_named_with_one_objective_and_with_several(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    one = optuna.create_study(study_name="one", storage=storage)
    several = optuna.create_study(
        study_name="several", storage=storage, directions=["minimize", "maximize"]
    )
    assert one.metric_names is None and several.metric_names is None
    name_objectives(one, ["val_loss"])
    name_objectives(several, ["val_loss", "val_accuracy"])
    assert optuna.load_study(study_name="one", storage=storage).metric_names == ["val_loss"]
    stored = optuna.load_study(study_name="several", storage=storage)
    assert stored.metric_names == ["val_loss", "val_accuracy"]
