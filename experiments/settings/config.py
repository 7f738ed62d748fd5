"""The typed configuration of a study run: the one source of what a setting is.

Each leaf of the schema below says, beside its type and default, what values it allows, whether
it is plumbing (where things are kept and how the work is spread, never what a trial computes;
with the reason) and which library call it feeds. Everything else reads that: the command-line
checks and `--help`, the study fingerprint (every leaf that is not plumbing), the MLflow params,
the report's settings page and the trial runner's calls.

Order (later wins): schema defaults < `studies/profiles/<profile>.yaml` < the study's `fixed`
values < command-line overrides (`key=value`, dotted keys as in Hydra). Every key and value is
checked: an unknown key, a wrong type, a value outside what is allowed, or an override of a key
the study searches is a `UsageError` that names it and says what is allowed.

To add a setting: one `setting(...)` line in its section below, and the keyword in the library
call it feeds. Its default must be the behaviour before it existed, so studies stored earlier
are still adopted (`experiments.settings.fingerprint`).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional  # noqa: UP035  (omegaconf reads typing.Optional)

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from colorize.choices import (
    ARCHITECTURES,
    DEFAULT_LOSS,
    L_SCALINGS,
    LOSSES,
    PADDINGS,
    STRIDES,
    optimizer_names,
)
from colorize.datasets import sources as data_sources
from experiments.common.errors import UsageError
from experiments.settings import overrides
from experiments.settings.engine_registry import ENGINE_ALIASES, ENGINE_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # experiments/settings/config.py
STUDIES_DIR = PROJECT_ROOT / "studies"
PROFILES_DIR = STUDIES_DIR / "profiles"
DEFAULT_PROFILE = "quick"


def setting(
    default: Any,
    *,
    allowed: tuple | None = None,
    bounds: tuple[float, float] | None = None,
    plumbing: str | None = None,
    feeds: dict[str, str] | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """A schema leaf with what the rest of the harness reads about it.

    Args:
        default: the value when nothing sets it.
        allowed: the values it may take (checked, listed in errors and `--help`).
        bounds: (lowest, highest) allowed.
        plumbing: why it does not change results; such a setting is left out of the study's
            fingerprint. Every other leaf is in it.
        feeds: {library call: its keyword}: `dataset` (`colorize.datasets.DatasetSpec`),
            `build` (`colorize.model.build_model`), `train` (`colorize.train.train`),
            `head` (the head's own options, given to both `build_model` and `train`),
            `precision` (`colorize.train.set_precision`), `predict`
            (`colorize.predict.predict_lab`) and `save` (`colorize.predict.save_model`).
        check: checks a value where `allowed` lists forms rather than values (raises
            UsageError); `allowed` is then only listed.
    """
    metadata = {"allowed": allowed, "bounds": bounds, "plumbing": plumbing, "feeds": feeds or {}}
    metadata["check"] = check
    return field(default=default, metadata=metadata)


def check_data_source(value: str) -> None:
    """A `data.source` that no source of `colorize.datasets.sources` takes, or takes in another
    form, is a UsageError saying what to write."""
    from colorize.datasets import DataError, DatasetSpec

    try:
        source = data_sources.find(value)
    except DataError:
        source = None
    if source is None or not source.form:
        allowed = ", ".join(data_sources.forms())
        raise UsageError(f"data.source={value} is not allowed; allowed: {allowed}")
    try:
        DatasetSpec(source=value)  # the source's own check of its form
    except DataError as error:
        raise UsageError(str(error)) from None


@dataclass
class DataConfig:
    # where the photos come from (`colorize.datasets.sources`); ignored with train_dir
    source: str = setting(
        "embedded", allowed=data_sources.forms(), check=check_data_source,
        feeds={"dataset": "source"},
    )  # fmt: skip
    train_dir: Optional[str] = setting(  # noqa: UP045  folder of colour photos (instead of source)
        None,
        plumbing="a path: the photos' content is fingerprinted (data.content), so a moved "
        "folder is the same study",
        feeds={"dataset": "folder"},
    )
    test_dir: Optional[str] = setting(  # noqa: UP045  photos the best model colorizes and scores
        None, plumbing="scored once the study has ended; no trial sees them"
    )
    image_size: int = setting(
        64, bounds=(8, 1024), feeds={"dataset": "image_size", "build": "image_size"}
    )
    # random crops (with flips) per training photo
    crops_per_photo: int = setting(12, bounds=(1, 500), feeds={"dataset": "crops_per_photo"})
    # whole photos held out for validation (embedded, landscapes)
    val_photos: int = setting(3, bounds=(1, 10_000), feeds={"dataset": "val_photos"})
    # photo folder: share of photos held out for validation
    val_fraction: float = setting(0.1, feeds={"dataset": "val_fraction"})
    split_seed: int = setting(0, feeds={"dataset": "seed"})
    l_scaling: str = setting(
        "unit", allowed=L_SCALINGS,
        feeds={"train": "l_scaling", "predict": "l_scaling", "save": "l_scaling"},
    )  # fmt: skip


@dataclass
class ModelConfig:
    architecture: str = setting("paper", allowed=ARCHITECTURES, feeds={"build": "architecture"})
    kernel_size: int = setting(3, bounds=(1, 15), feeds={"build": "kernel_size"})
    padding: str = setting("same", allowed=PADDINGS, feeds={"build": "padding"})
    strides: int = setting(2, allowed=STRIDES, feeds={"build": "strides"})
    # batch normalization after every hidden convolution (Zhang et al.); off: the paper's network
    batch_norm: bool = setting(False, feeds={"build": "batch_norm"})


@dataclass
class TrainerConfig:
    optimizer: str = setting("adamax", allowed=optimizer_names(), feeds={"train": "optimizer"})
    learning_rate: float = setting(1e-3, feeds={"train": "learning_rate"})
    batch_size: int = setting(16, bounds=(1, 4096), feeds={"train": "batch_size"})
    epochs: int = setting(12, bounds=(1, 100_000), feeds={"train": "epochs"})
    patience: int = setting(4, bounds=(0, 100_000), feeds={"train": "patience"})
    seed: int = setting(0, feeds={"train": "seed"})
    # the head: "mse" (the paper's regression) or "classification" (a/b bins, Zhang et al.)
    loss: str = setting(DEFAULT_LOSS, allowed=LOSSES, feeds={"build": "loss", "train": "loss"})
    # classification: share of the uniform distribution in the class weights (1: none)
    rebalance: float = setting(0.5, bounds=(0.0, 1.0), feeds={"head": "rebalance"})
    # classification: annealed-mean temperature of the decoded a/b (1: the mean)
    temperature: float = setting(0.38, bounds=(0.01, 1.0), feeds={"head": "temperature"})
    # bfloat16 compute on GPUs; XLA is used where the backend can
    mixed_precision: bool = setting(False, feeds={"precision": "mixed"})
    checkpoint_every: int = setting(  # seconds between epoch checkpoints (0: every epoch)
        60,
        bounds=(0, 86_400),
        plumbing="how often a killed trial's progress is saved; a resumed fit continues the "
        "same epochs",
        feeds={"train": "checkpoint_every"},
    )
    # no graph: tiny smoke runs start sooner; far slower at real sizes
    run_eagerly: bool = setting(
        False,
        plumbing="the same computation run op by op instead of compiled",
        feeds={"train": "run_eagerly"},
    )


@dataclass
class TrackingConfig:
    # CPU, memory (and GPU) figures on each trial's run
    system_metrics: bool = setting(
        True, plumbing="what is recorded beside a trial, not what it computes"
    )


@dataclass
class RunConfig:
    study: str = setting(
        "optimizers",
        plumbing="which study file: its content (metric, sampler, pruner, space) is "
        "fingerprinted as study.*",
    )
    name: Optional[str] = setting(  # noqa: UP045  the study's stored name; None: the study's own
        None, plumbing="the stored name: another name is another study"
    )
    profile: str = setting(DEFAULT_PROFILE)
    engine: str = setting(
        "optuna",
        allowed=ENGINE_NAMES,
        plumbing="each engine keeps its own study (storage, runs, registered model)",
    )
    runs_dir: str = setting("mlruns", plumbing="where the stores and files are kept")
    storage: Optional[str] = setting(  # noqa: UP045  Optuna storage URL; None: sqlite in runs_dir
        None, plumbing="where the Optuna study is kept"
    )
    tracking_uri: Optional[str] = setting(  # noqa: UP045  MLflow URI; None: sqlite in runs_dir
        None, plumbing="where the MLflow runs are kept"
    )
    n_trials: Optional[int] = setting(  # noqa: UP045  overrides the study's budget
        None, bounds=(1, 100_000), plumbing="the budget: a larger one extends the same study"
    )
    workers: int = setting(  # processes on this machine working on the study
        1, bounds=(1, 64), plumbing="how many processes share the trials"
    )
    heartbeat: int = setting(  # seconds; a trial of another host silent for 3 beats is retried
        10, bounds=(1, 3600), plumbing="how soon a dead worker's trial is retried"
    )
    # race the seeds: a round of one more seed per group whose comparison is undecided
    # (`experiments.engines.racing`), until every comparison is decided or max_seeds is reached
    race: bool = setting(False)
    max_seeds: int = setting(10, bounds=(3, 1000))  # racing: the most seeds a group gets
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


@dataclass
class Profile:
    name: str = MISSING
    description: str = ""
    epoch_scale: float = 1.0
    max_seeds: Optional[int] = None  # noqa: UP045
    trial_scale: float = 1.0


SECTIONS = ("data", "model", "trainer", "tracking")
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _leaves(schema: type, prefix: str = "") -> dict[str, tuple[type, dict]]:
    """Every dotted leaf key of `schema`: (its type, its `setting` metadata).

    Raises:
        ImportError: two leaves of one name (trial params and MLflow params are named by the
            leaf alone, so one would overwrite the other).
    """
    leaves = _section_leaves(schema, prefix)
    named: dict[str, str] = {}
    for key in leaves:
        other = named.setdefault(key.split(".")[-1], key)
        if other != key:
            raise ImportError(f"settings {other} and {key} share the name {key.split('.')[-1]!r}")
    return leaves


def _section_leaves(schema: type, prefix: str = "") -> dict[str, tuple[type, dict]]:
    leaves = {}
    hints = typing.get_type_hints(schema)
    for item in fields(schema):
        kind = hints[item.name]
        kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
        if is_dataclass(kind):
            leaves |= _section_leaves(kind, f"{prefix}{item.name}.")
        else:
            leaves[f"{prefix}{item.name}"] = (kind, dict(item.metadata))
    return leaves


_LEAVES = _leaves(RunConfig)
LEAF_TYPES = {key: kind for key, (kind, _) in _LEAVES.items()}
ALLOWED_VALUES = {key: m["allowed"] for key, (_, m) in _LEAVES.items() if m.get("allowed")}
RANGES = {key: m["bounds"] for key, (_, m) in _LEAVES.items() if m.get("bounds")}
CHECKS = {key: m["check"] for key, (_, m) in _LEAVES.items() if m.get("check")}
# Settings that never change what a trial computes, each with the reason; left out of the
# fingerprint. Every other leaf is a result setting.
PLUMBING = {key: m["plumbing"] for key, (_, m) in _LEAVES.items() if m.get("plumbing")}
RESULT_KEYS = tuple(key for key in LEAF_TYPES if key not in PLUMBING)


def arguments(cfg: RunConfig, call: str) -> dict[str, Any]:
    """The keyword arguments `cfg` gives library call `call` (`dataset`, `build`, `train`)."""
    flat = flat_values(cfg)
    return {
        meta["feeds"][call]: flat[key]
        for key, (_, meta) in _LEAVES.items()
        if call in meta.get("feeds", {})
    }


def result_setting_leaves() -> tuple[str, ...]:
    """The leaf names (as trial params are logged) of the result settings of every trial:
    the report shows them and checks that trials share them."""
    return tuple(key.split(".")[-1] for key in RESULT_KEYS)


def flat_values(cfg: RunConfig) -> dict[str, Any]:
    """Every dotted key of `cfg` with its value."""
    flat = {}
    for key in LEAF_TYPES:
        section, _, leaf = key.partition(".")
        flat[key] = getattr(getattr(cfg, section), leaf) if leaf else getattr(cfg, key)
    return flat


def leaf_to_key() -> dict[str, str]:
    """Leaf name (e.g. `optimizer`) -> dotted key (`trainer.optimizer`); leaves are unique."""
    return {key.split(".")[-1]: key for key in LEAF_TYPES if "." in key}


def data_source(cfg: RunConfig) -> str:
    """Where the photos come from, as the dataset names it: `folder` (data.train_dir) or
    data.source."""
    from colorize.datasets import DatasetSpec

    return DatasetSpec(**arguments(cfg, "dataset")).source


def param_values(cfg: RunConfig) -> dict[str, Any]:
    """A trial's MLflow params, by leaf name: every setting of a section, and every result
    setting outside them (`profile`); plumbing outside a section (where runs are kept, how many
    workers) is not a param."""
    flat = flat_values(cfg)
    return {
        key.split(".")[-1]: flat[key] for key in LEAF_TYPES if "." in key or key not in PLUMBING
    }


def study_name(cfg: RunConfig) -> str:
    """The name the study is stored under (Optuna study, MLflow experiment, registered model)."""
    return cfg.name or cfg.study


def available_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_yaml(path: Path, what: str) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UsageError(
            f"{what} {path} is not valid YAML: {str(error).splitlines()[0]}"
        ) from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{what} {path} must be a mapping of keys to values")
    return loaded


def load_named_yaml(folder: Path, name: str, kind: str) -> tuple[Path, dict]:
    """`<folder>/<name>.yaml` read safely; an unknown name is a UsageError listing the known ones."""
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    if name not in names:
        raise UsageError(
            f"unknown {kind} {name!r}{overrides.closest(name, names)}; allowed: {', '.join(names)}"
        )
    path = folder / f"{name}.yaml"
    return path, load_yaml(path, kind)


def load_profile(name: str) -> tuple[Profile, dict]:
    """The profile's scaling settings, and its config values (data/trainer sections)."""
    path, raw = load_named_yaml(PROFILES_DIR, name, "profile")
    values = {section: raw.pop(section) for section in SECTIONS if section in raw}
    try:
        profile = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(Profile), {"name": name, **raw})
        )
    except OmegaConfBaseException as error:
        raise UsageError(
            f"profile {path}: {error.msg if hasattr(error, 'msg') else error}"
        ) from None
    return profile, values


def _type_error(key: str, value: Any, origin: str) -> UsageError:
    word = _TYPE_WORDS.get(LEAF_TYPES.get(key), "of another type")
    return UsageError(f"{origin}: {key}={value} is not {word}")


def _merge(base, values: dict[str, Any], origin: str):
    """`values` ({dotted key: value}) merged over `base`, each checked against its type."""
    merged = base
    for key, value in values.items():
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException:
            raise _type_error(key, value, origin) from None
    return merged


def validate(cfg: RunConfig) -> None:
    """Check values the types alone cannot; raises UsageError naming the key."""
    flat = flat_values(cfg)
    for key, allowed in ALLOWED_VALUES.items():
        value = str(flat[key]).lower() if key == "trainer.optimizer" else flat[key]
        if CHECKS.get(key):
            CHECKS[key](value)
            continue
        if value not in allowed:
            listed = ", ".join(map(str, allowed))
            raise UsageError(f"{key}={flat[key]} is not allowed; allowed: {listed}")
    for key, (low, high) in RANGES.items():
        if flat[key] is not None and not low <= flat[key] <= high:
            raise UsageError(f"{key}={flat[key]} is out of range; allowed: {low} to {high}")
    if not cfg.trainer.learning_rate > 0:
        raise UsageError(f"trainer.learning_rate={cfg.trainer.learning_rate} must be positive")
    if not 0 < cfg.data.val_fraction < 1:
        raise UsageError(f"data.val_fraction={cfg.data.val_fraction}: allowed 0 < x < 1")
    if cfg.data.image_size % 8:
        raise UsageError(
            f"data.image_size={cfg.data.image_size} must be a multiple of 8 (the network halves "
            "it three times)"
        )
    if cfg.model.kernel_size % 2 == 0:
        raise UsageError(f"model.kernel_size={cfg.model.kernel_size} must be odd (3, 5, 7, ...)")
    if cfg.data.train_dir and cfg.data.source != "embedded":
        raise UsageError(
            f"data.train_dir and data.source={cfg.data.source} exclude each other; give one"
        )
    if cfg.name is not None and not NAME_PATTERN.match(cfg.name):
        raise UsageError(
            f"name={cfg.name} is not allowed; use letters, digits, '_', '.' and '-' (at most "
            "100, starting with a letter or digit)"
        )


# A study's settings as `compose` needs them: (fixed values, dotted keys it searches).
StudyInfo = Callable[[str], tuple[dict[str, Any], set[str]]]


def compose(args: list[str], study_info: StudyInfo | None = None) -> tuple[RunConfig, Profile]:
    """Compose the run configuration from command-line `key=value` arguments.

    Args:
        args: the overrides (`tuner=` is taken for `engine=`, with a note that it is deprecated).
        study_info: maps a study name to its fixed values ({dotted key: value}) and the dotted
            keys it searches; the fixed values go beneath the user's overrides, and an override
            of a searched key is refused.
    """
    given = overrides.parse(args, [*LEAF_TYPES, *ENGINE_ALIASES], flags=("--help", "--cfg"))
    for alias in ENGINE_ALIASES:
        overrides.take_alias(given, alias, "engine", ENGINE_NAMES)
    base = OmegaConf.structured(RunConfig)
    top = _merge(base, {k: v for k, v in given.items() if "." not in k}, "override")
    profile, profile_values = load_profile(top.profile)
    flat_profile = {
        f"{section}.{leaf}": value
        for section, values in profile_values.items()
        for leaf, value in values.items()
    }
    cfg = _merge(base, flat_profile, f"profile {profile.name}")
    if study_info is not None:
        fixed, searched = study_info(top.study)
        conflicts = sorted(set(given) & searched)
        if conflicts:
            raise UsageError(
                f"{', '.join(conflicts)} {'is' if len(conflicts) == 1 else 'are'} searched by "
                f"study {top.study} (studies/{top.study}.yaml, space); drop the override, or "
                "run a study that keeps it fixed"
            )
        cfg = _merge(cfg, fixed, f"study {top.study} fixed")
    cfg = _merge(cfg, given, "override")
    run_config: RunConfig = OmegaConf.to_object(cfg)
    validate(run_config)
    return run_config, profile


def profile_values(name: str) -> dict[str, Any]:
    """Every dotted key's value under profile `name` (schema defaults where it sets none)."""
    cfg, _ = compose([f"profile={name}"])
    return flat_values(cfg)


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: RunConfig) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def with_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """A copy of `cfg` with dotted keys set (values already typed), validated."""
    merged = OmegaConf.structured(cfg)
    for key, value in values.items():
        OmegaConf.update(merged, key, value, merge=False)
    result: RunConfig = OmegaConf.to_object(merged)
    validate(result)
    return result
