"""Settings that provably count: each setting that is not plumbing changes the study's
fingerprint AND arrives where it acts (the dataset the builder is given, the trial runner's calls
to build and train the model, the model itself). The expected lists below are written out by
hand, not read from the schema, so a setting dropped from a call or from the fingerprint fails
here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from experiments.settings import config
from experiments.settings.fingerprint import make_fingerprint
from experiments.settings.study_spec import load_study
from experiments.trials.data import dataset_spec
from experiments.trials.trial_runner import calls, run_params

# Where things are kept and how the work is spread: never fingerprinted.
PLUMBING = {
    "study", "name", "engine", "runs_dir", "storage", "tracking_uri", "n_trials", "workers",
    "heartbeat", "data.train_dir", "data.test_dir", "trainer.checkpoint_every",
    "trainer.run_eagerly", "tracking.system_metrics",
}  # fmt: skip
# Each result setting and where its value arrives: (call, keyword). `dataset` is the
# `DatasetSpec` the builder is given; the rest are the trial runner's calls (`calls`).
ACTS = {
    "data.source": {("dataset", "source")},
    "data.image_size": {("dataset", "image_size"), ("build", "image_size")},
    "data.crops_per_photo": {("dataset", "crops_per_photo")},
    "data.val_photos": {("dataset", "val_photos")},
    "data.val_fraction": {("dataset", "val_fraction")},
    "data.split_seed": {("dataset", "seed")},
    "data.l_scaling": {("train", "l_scaling"), ("predict", "l_scaling"), ("save", "l_scaling")},
    "model.architecture": {("build", "architecture")},
    "model.kernel_size": {("build", "kernel_size")},
    "model.padding": {("build", "padding")},
    "model.strides": {("build", "strides")},
    "model.batch_norm": {("build", "batch_norm")},
    "trainer.optimizer": {("train", "optimizer")},
    "trainer.learning_rate": {("train", "learning_rate")},
    "trainer.batch_size": {("train", "batch_size")},
    "trainer.epochs": {("train", "epochs")},
    "trainer.patience": {("train", "patience")},
    "trainer.seed": {("train", "seed")},
    "trainer.loss": {("build", "loss"), ("train", "loss")},
    # the head's options go to both calls; the head takes its own
    "trainer.rebalance": {("build", "rebalance"), ("train", "rebalance")},
    "trainer.temperature": {("build", "temperature"), ("train", "temperature")},
    "trainer.mixed_precision": {("precision", "mixed")},
}
# Fingerprinted, acting on the study as a whole (its budgets, its rounds), not on one call.
STUDY_WIDE = {"profile", "race", "max_seeds"}
# The settings that shape the network `build_model` returns (on a classification head).
SHAPE_THE_MODEL = {
    "data.image_size", "model.architecture", "model.kernel_size", "model.padding",
    "model.strides", "model.batch_norm", "trainer.loss", "trainer.temperature",
}  # fmt: skip
OTHER_VALUE = {  # a valid value other than the default, chosen by hand
    "data.source": "landscapes", "data.image_size": 24, "data.crops_per_photo": 5,
    "data.val_photos": 2, "data.val_fraction": 0.2, "data.split_seed": 3,
    "data.l_scaling": "centered", "model.architecture": "unet", "model.kernel_size": 5,
    "model.padding": "valid", "model.strides": 1, "model.batch_norm": True,
    "trainer.optimizer": "rmsprop", "trainer.learning_rate": 0.01, "trainer.batch_size": 8,
    "trainer.epochs": 3, "trainer.patience": 2, "trainer.seed": 7, "trainer.loss": "classification",
    "trainer.rebalance": 0.9, "trainer.temperature": 0.7, "trainer.mixed_precision": True,
    "profile": "paper", "race": True, "max_seeds": 6,
}  # fmt: skip


def test_every_setting_is_plumbing_or_acts_somewhere_named_here():
    assert set(config.PLUMBING) == PLUMBING
    assert set(config.LEAF_TYPES) == PLUMBING | set(ACTS) | STUDY_WIDE
    assert all(len(reason) > 20 for reason in config.PLUMBING.values())  # each says why


def _study_for(key: str) -> str:
    """A study that keeps `key` fixed (a searched key is covered by the study's space)."""
    return "optimizers" if key.startswith(("data.", "model.")) else "architecture"


@pytest.mark.parametrize("key", sorted(set(ACTS) | STUDY_WIDE))
def test_changing_a_result_setting_changes_the_fingerprint(key):
    study = _study_for(key)
    spec = load_study(study)
    cfg, profile = config.compose([f"study={study}"])
    changed, _ = config.compose([f"study={study}", f"{key}={OTHER_VALUE[key]}"])
    before = make_fingerprint(cfg, spec, profile.epoch_scale, "k" * 16)
    after = make_fingerprint(changed, spec, profile.epoch_scale, "k" * 16)
    assert after.hash != before.hash
    assert any(line.startswith(f"{key} ") for line in after.differences(before.values)), key


def _unreached(key: str) -> list[tuple[str, str]]:
    """The places of `ACTS[key]` the changed value does not arrive at."""
    base, _ = config.compose(["data.image_size=16"])
    value = OTHER_VALUE[key]
    changed, _ = config.compose(["data.image_size=16", f"{key}={value}"])
    missing = []
    for call, keyword in sorted(ACTS[key]):
        if call == "dataset":
            arrived = getattr(dataset_spec(changed), keyword, None)
            unchanged = getattr(dataset_spec(base), keyword, None)
        else:
            arrived = calls(changed)[call].get(keyword)
            unchanged = calls(base)[call].get(keyword)
        if arrived != value or arrived == unchanged:
            missing.append((call, keyword))
    return missing


@pytest.mark.parametrize("key", sorted(ACTS))
def test_each_result_setting_arrives_where_it_acts(key):
    assert _unreached(key) == []


def test_the_reach_check_fails_when_a_setting_is_dropped_from_a_call(monkeypatch):
    kind, meta = config._LEAVES["trainer.patience"]
    monkeypatch.setitem(config._LEAVES, "trainer.patience", (kind, {**meta, "feeds": {}}))
    assert _unreached("trainer.patience") == [("train", "patience")]
    kind, meta = config._LEAVES["data.l_scaling"]
    only_train = {**meta, "feeds": {"train": "l_scaling"}}  # as when it was wired by hand
    monkeypatch.setitem(config._LEAVES, "data.l_scaling", (kind, only_train))
    assert _unreached("data.l_scaling") == [("predict", "l_scaling"), ("save", "l_scaling")]


def test_the_dataset_settings_reach_the_builder():
    base, _ = config.compose(["data.image_size=16"])
    for key in ("data.image_size", "data.crops_per_photo", "data.val_photos", "data.split_seed"):
        changed, _ = config.compose(["data.image_size=16", f"{key}={OTHER_VALUE[key]}"])
        assert dataset_spec(changed).settings != dataset_spec(base).settings, key
    folder, _ = config.compose(["data.train_dir=/photos"])
    assert (dataset_spec(folder).source, dataset_spec(folder).folder) == ("folder", "/photos")
    assert dataset_spec(folder).settings.val_photos is None  # a folder holds out a share


@pytest.mark.parametrize("key", sorted(SHAPE_THE_MODEL))
def test_the_model_settings_change_the_model_built(key):
    import keras

    from colorize.model import build_model

    def built(cfg):
        keras.utils.clear_session()
        return build_model(**calls(cfg)["build"]).to_json()

    args = ["data.image_size=16"]
    if key != "trainer.loss":  # a classification head, where the temperature shapes the model
        args.append("trainer.loss=classification")
    base, _ = config.compose(args)
    changed, _ = config.compose([*args, f"{key}={OTHER_VALUE[key]}"])
    assert built(changed) != built(base)


def test_mlflow_params_are_the_settings_the_schema_logs():
    cfg, _ = config.compose(["study=optimizers"])
    logged = {key.split(".")[-1] for key in (set(ACTS) | STUDY_WIDE)} | {
        "train_dir", "test_dir", "checkpoint_every", "run_eagerly", "system_metrics",
    }  # fmt: skip
    params = run_params(cfg)
    assert set(params) == logged
    assert params["profile"] == "quick" and params["train_dir"] == ""


@dataclass
class _Data:
    seed: int = config.setting(0)


@dataclass
class _Trainer:
    seed: int = config.setting(0)


@dataclass
class _TwoSeeds:  # a schema whose sections share a leaf name
    data: _Data = field(default_factory=_Data)
    trainer: _Trainer = field(default_factory=_Trainer)


def test_one_leaf_name_in_two_sections_is_an_error_at_import():
    with pytest.raises(ImportError, match="data.seed and trainer.seed share the name 'seed'"):
        config._leaves(_TwoSeeds)


def test_a_head_option_reaches_the_head_through_one_mapping():
    """`build_model` and `train` pass the heads' options on whole: an unknown one is refused
    as a keyword would be, and the classification head's temperature reaches its decoder."""
    import keras

    from colorize.heads import HEAD_OPTIONS
    from colorize.heads.classification import _decoder
    from colorize.model import build_model

    assert set(HEAD_OPTIONS) == {"rebalance", "temperature"}
    keras.utils.clear_session()
    model = build_model(image_size=16, loss="classification", temperature=0.7, rebalance=0.9)
    assert _decoder(model).temperature == pytest.approx(0.7)
    with pytest.raises(TypeError, match="unknown head option sharpness"):
        build_model(image_size=16, sharpness=2.0)
    assert replace(config.RunConfig().trainer).temperature == 0.38  # the default, unchanged


def test_a_real_trial_passes_each_setting_to_the_call_it_acts_in(tmp_path, monkeypatch):
    """One smoke trial run in-process, every library call recorded as the trial runner makes
    it: each setting's value there is the trial's logged param."""
    import colorize.cache
    from experiments.run import main as run_main
    from experiments.trials import trial_runner
    from tests.studies_helpers import mlflow_runs

    seen: dict[str, dict] = {}

    def recording(call: str, function):
        def wrapper(*args, **kwargs):
            seen[call] = kwargs
            return function(*args, **kwargs)

        return wrapper

    for call, name in (
        ("precision", "set_precision"),
        ("build", "build_model"),
        ("train", "train"),
        ("predict", "predict_lab"),
        ("save", "save_model"),
    ):
        monkeypatch.setattr(trial_runner, name, recording(call, getattr(trial_runner, name)))
    load = colorize.cache.load_dataset_cached

    def load_recording(cache_dir, spec, **kwargs):
        seen["dataset"] = vars(spec)
        return load(cache_dir, spec, **kwargs)

    monkeypatch.setattr(colorize.cache, "load_dataset_cached", load_recording)
    args = ["study=optimizers", "profile=smoke", "n_trials=1", "trainer.patience=3",
            "data.l_scaling=centered", f"runs_dir={tmp_path}"]  # fmt: skip
    assert run_main(args) == 0
    runs = mlflow_runs(tmp_path, "optimizers")
    trial = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    for key, places in ACTS.items():
        logged = trial[f"params.{key.split('.')[-1]}"]
        for call, keyword in places:
            assert keyword in seen[call], (key, call, keyword)
            assert str(seen[call][keyword]) == logged, (key, call, keyword)
    assert seen["train"]["patience"] == 3 and seen["predict"]["l_scaling"] == "centered"
