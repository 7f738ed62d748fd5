"""The report's learning curves: trials of heads whose losses measure different things are never
drawn on one loss axis, and each loss axis says what its loss measures (the head's own label)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from experiments.report import figures
from experiments.report.build import loss_labels
from experiments.report.verdicts import Grouping


def history(losses: list[float]) -> pd.DataFrame:
    epochs = range(1, len(losses) + 1)
    return pd.DataFrame(
        {"val_loss": losses, "loss": losses, "val_accuracy": np.linspace(0.3, 0.5, len(losses))},
        index=list(epochs),
    )


@pytest.fixture
def drawn(monkeypatch):
    """The figures `curves` would save: each one's axes as (title, y label, lines drawn)."""
    saved = []

    def keep(figure, path):
        saved.append([(a.get_title(), a.get_ylabel(), len(a.get_lines())) for a in figure.axes])
        figures.plt.close(figure)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    return saved


def test_two_heads_get_a_loss_panel_each_labelled_by_the_head(tmp_path, drawn):
    stored = SimpleNamespace(
        trials=pd.DataFrame({"number": [0, 1, 2], "loss": ["mse", "classification", "mse"]})
    )
    labels = loss_labels(stored)
    assert labels == {  # what the heads themselves say, written out here
        0: "MSE on a/b / 128",
        1: "soft-encoded cross-entropy (nats)",
        2: "MSE on a/b / 128",
    }
    grouping = Grouping(
        "Head", pd.Series(["mse", "classification", "mse"]), ["mse", "classification"]
    )
    histories = {0: history([0.02, 0.015]), 1: history([5.1, 4.9]), 2: history([0.03, 0.02])}
    figures.curves(tmp_path / "c.png", histories, [0, 1, 2], grouping, labels)
    ((mse, classification, accuracy),) = drawn
    # two mse trials: 2 lines each (validation, training) and 1 dot; one classification trial
    assert mse == ("validation loss: MSE on a/b / 128", "loss (MSE on a/b / 128)", 6)
    assert classification[:2] == (
        "validation loss: soft-encoded cross-entropy (nats)",
        "loss (soft-encoded cross-entropy (nats))",
    )
    assert classification[2] == 3
    assert accuracy[1] == "accuracy %"


def test_one_head_keeps_one_loss_panel_and_a_study_without_the_setting_is_the_default(
    tmp_path, drawn
):
    stored = SimpleNamespace(trials=pd.DataFrame({"number": [0, 1]}))  # stored before heads
    labels = loss_labels(stored)
    assert labels == {0: "MSE on a/b / 128", 1: "MSE on a/b / 128"}
    grouping = Grouping("Optimizer", pd.Series(["adam", "rmsprop"]), ["adam", "rmsprop"])
    figures.curves(
        tmp_path / "c.png", {0: history([0.02, 0.01]), 1: history([0.03, 0.02])}, [0, 1],
        grouping, labels,
    )  # fmt: skip
    ((loss, accuracy),) = drawn
    assert loss == ("validation loss", "loss (MSE on a/b / 128)", 6)
