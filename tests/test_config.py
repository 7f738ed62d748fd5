"""Configuration and study definitions are checked whole before any work: every choice, bound and
fixed value of a study YAML as an override of it would be, and overrides against what a study
searches."""

from __future__ import annotations

import shutil

import pytest

from experiments.common.errors import UsageError
from experiments.settings import config
from experiments.settings import study_spec as space
from experiments.settings.config import compose
from experiments.settings.study_spec import load_study

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`

OPTIMIZERS_YAML = """
name: mine
metric: val_loss
sampler: {type: tpe, seed: 0}
space:
"""


@pytest.fixture
def studies(tmp_path, monkeypatch):
    """A studies folder of our own (the project's YAMLs beside the test's)."""
    folder = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, folder)
    monkeypatch.setattr(config, "STUDIES_DIR", folder)
    monkeypatch.setattr(space, "STUDIES_DIR", folder)

    def write(body: str, extra: str = "") -> None:
        (folder / "mine.yaml").write_text(OPTIMIZERS_YAML + body + extra)

    return write


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  optimizer: {choices: [adamax, adamx]}\n", "space.optimizer choice 'adamx'"),
        ("  padding: {choices: [same, full]}\n", "model.padding=full is not allowed"),
        (
            "  kernel_size: {choices: [3, three]}\n",
            "'three' is not a valid int for model.kernel_size",
        ),
        ("  learning_rate: {low: abc, high: 0.1}\n", "space.learning_rate.low must be a number"),
        ("  batch_size: {low: 4.5, high: 16}\n", "low and high must be integers"),
        ("  padding: {low: 1, high: 2}\n", "model.padding is not numeric"),
        ("  epochs: {choices: [0, 10]}\n", "trainer.epochs=0 is out of range"),
        (
            "  loss: {choices: [mse, classification]}\n",
            "metric val_loss cannot rank trials of different heads",
        ),
        ("  optimizer: {choices: [adam]}\n", None),
    ],
)
def test_a_study_yaml_is_checked_whole_at_load(studies, body, message):
    studies(body)
    if message is None:
        assert load_study("mine").space["optimizer"].choices == ["adam"]
        return
    with pytest.raises(UsageError, match="study .*mine.yaml") as error:
        load_study("mine")
    assert message in str(error.value)


def test_bounds_written_without_a_dot_are_numbers(studies):
    studies("  learning_rate: {low: 1e-4, high: 1e-2, log: true}\n")  # PyYAML reads these as text
    param = load_study("mine").space["learning_rate"]
    assert (param.low, param.high, param.log) == (1e-4, 1e-2, True)


def test_fixed_values_sampler_and_pruner_options_are_checked(studies):
    studies("  optimizer: {choices: [adam]}\n", "fixed: {patience: -1}\n")
    with pytest.raises(UsageError, match="fixed patience.*trainer.patience=-1 is out of range"):
        load_study("mine")
    studies("  optimizer: {choices: [adam]}\n", "pruner: {type: median, warmup: 2}\n")
    with pytest.raises(UsageError, match="pruner"):
        load_study("mine")
    (config.STUDIES_DIR / "mine.yaml").write_text(
        OPTIMIZERS_YAML.replace("seed: 0", "seed: 0, startup: 3")
        + "  optimizer: {choices: [adam]}\n"
    )
    with pytest.raises(UsageError, match="sampler tpe has unknown option"):
        load_study("mine")


def test_a_smoke_search_can_still_prune():
    """At the smoke profile the search study runs 4 trials of 2 epochs: its pruner's start-up
    trials and warm-up epochs are scaled so that pruning can happen at all."""
    cfg, profile = compose(["study=search", "profile=smoke"])
    spec = load_study("search").for_profile(profile, cfg.trainer.epochs)
    total = spec.total_trials(profile)
    assert spec.pruner["n_startup_trials"] < total
    assert spec.pruner["n_warmup_steps"] < cfg.trainer.epochs - 1  # steps are 0-based epochs
    assert spec.sampler["n_startup_trials"] < total
    paper_cfg, paper = compose(["study=search", "profile=paper"])
    unchanged = load_study("search").for_profile(paper, paper_cfg.trainer.epochs)
    assert unchanged.pruner == load_study("search").pruner  # the paper profile keeps its meaning


def study_info(name: str):
    spec = load_study(name)
    return spec.fixed, spec.searched_keys


def test_overrides_of_searched_keys_are_refused_and_of_fixed_keys_win():
    with pytest.raises(UsageError, match="trainer.optimizer is searched by study optimizers"):
        compose(["study=optimizers", "trainer.optimizer=adam"], study_info=study_info)
    cfg, _ = compose(["study=epochs", "trainer.optimizer=adam"], study_info=study_info)
    assert cfg.trainer.optimizer == "adam"  # the epochs study fixes adamax; the user's wins
    cfg, _ = compose(["study=epochs"], study_info=study_info)
    assert cfg.trainer.optimizer == "adamax"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.batch_size=big", "trainer.batch_size=big is not an integer"),
        ("trainer.learning_rate=fast", "trainer.learning_rate=fast is not a number"),
        ("data.crops_per_photo=0", "data.crops_per_photo=0 is out of range; allowed: 1 to 500"),
        ("data.train_dir=/x", None),
    ],
)
def test_wrong_types_and_ranges_name_what_is_allowed(override, message):
    if message is None:
        assert compose([override])[0].data.train_dir == "/x"
        return
    with pytest.raises(UsageError) as error:
        compose([override])
    assert message in str(error.value)


PARETO_SPACE = "space:\n  optimizer: {choices: [adam, adamax]}\n"
TWO_OBJECTIVES = (
    "objectives:\n"
    "  - {metric: delta_e2000, direction: minimize}\n"
    "  - {metric: colorfulness_gap, direction: minimize}\n"
)


@pytest.fixture
def study_file(tmp_path, monkeypatch):
    """Write `studies/mine.yaml` (beside the project's studies) from its whole text."""
    folder = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, folder)
    monkeypatch.setattr(config, "STUDIES_DIR", folder)
    monkeypatch.setattr(space, "STUDIES_DIR", folder)

    def write(text: str) -> None:
        (folder / "mine.yaml").write_text("name: mine\n" + text + PARETO_SPACE)

    return write


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metric: val_loss\n" + TWO_OBJECTIVES,
            "objectives and metric/direction exclude each other",
        ),
        (
            "direction: minimize\n" + TWO_OBJECTIVES,
            "objectives and metric/direction exclude each other",
        ),
        ("objectives: []\n", "objectives must be a non-empty list"),
        ("objectives: delta_e2000\n", "objectives must be a non-empty list"),
        ("objectives:\n  - delta_e2000\n", "objectives[0] must be {metric, direction}"),
        (
            "objectives:\n  - {metric: delta_e2000}\n  - {metric: deltae}\n",
            "objectives[1].metric 'deltae' not allowed; allowed: val_accuracy, val_loss",
        ),
        (
            "objectives:\n  - {metric: delta_e2000}\n  - {metric: colorfulness_pred}\n",
            "objectives[1].metric 'colorfulness_pred' is not an objective a study may optimize",
        ),
        (
            "objectives:\n  - {metric: delta_e2000, direction: lower}\n  - {metric: psnr}\n",
            "objectives[0].direction must be minimize or maximize, not 'lower'",
        ),
        (
            "objectives:\n  - {metric: psnr, goal: up}\n  - {metric: ssim}\n",
            "objectives[0] has unknown field(s) goal",
        ),
        (
            "objectives:\n  - {metric: psnr}\n  - {metric: psnr, direction: minimize}\n",
            "objectives name psnr more than once",
        ),
        ("metric: epochs_run\n", "metric 'epochs_run' is not an objective a study may optimize"),
        ("metric: val_loss\ndirection: down\n", "direction must be minimize or maximize"),
        (
            TWO_OBJECTIVES + "pruner: {type: median}\n",
            "pruner median not allowed with several objectives: Optuna cannot prune a "
            "multi-objective study",
        ),
        (
            TWO_OBJECTIVES + "sampler: {type: nsga2, population_size: 1}\n",
            "sampler nsga2 population_size must be an integer of at least 2",
        ),
        (
            TWO_OBJECTIVES + "sampler: {type: nsga2, generations: 3}\n",
            "sampler nsga2 has unknown option(s) generations",
        ),
    ],
)
def test_objectives_are_checked_with_one_line_naming_file_and_key(study_file, text, message):
    study_file(text)
    with pytest.raises(UsageError, match="study .*mine.yaml") as error:
        load_study("mine")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_objectives_take_directions_from_the_registry_and_one_objective_is_a_metric(study_file):
    study_file("objectives:\n  - {metric: psnr}\n  - {metric: delta_e2000}\n")
    spec = load_study("mine")
    assert spec.is_multi and spec.metrics == ["psnr", "delta_e2000"]
    assert spec.directions == ["maximize", "minimize"]
    assert (spec.metric, spec.direction) == ("psnr", "maximize")  # the first objective
    study_file("objectives:\n  - {metric: psnr}\n")
    one = load_study("mine")
    assert not one.is_multi and (one.metric, one.direction) == ("psnr", "maximize")


def test_the_pareto_study_searches_the_colour_settings_with_nsga2_at_every_profile():
    spec = load_study("pareto")
    assert spec.metrics == ["delta_e2000", "colorfulness_gap"]
    assert spec.directions == ["minimize", "minimize"]
    assert spec.sampler["type"] == "nsga2" and spec.pruner["type"] == "none"
    assert spec.searched_keys == {
        "trainer.loss", "trainer.rebalance", "trainer.temperature", "model.batch_norm",
        "trainer.optimizer", "trainer.learning_rate",
    }  # fmt: skip
    assert spec.space["loss"].choices == ["mse", "classification"]
    for name in ("smoke", "quick"):
        cfg, profile = compose(["study=pareto", f"profile={name}"])
        scaled = load_study("pareto").for_profile(profile, cfg.trainer.epochs)
        total = scaled.total_trials(profile)
        # several generations of NSGA-II within the budget, each of at least 2 trials
        assert 2 <= scaled.sampler["population_size"] <= total // 2, (name, scaled.sampler)
    assert total <= 20  # the quick profile: minutes on a CPU, not hours
