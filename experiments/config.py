"""The typed configuration of a study run, composed from defaults, a profile, a study and overrides.

Order (later wins): schema defaults < `studies/profiles/<profile>.yaml` < the study's `fixed`
values < command-line overrides (`key=value`, dotted keys as in Hydra). Every key and value is
checked: an unknown key, a wrong type, a value outside what is allowed, or an override of a key
the study searches is a `UsageError` that names it and says what is allowed.
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
    DATA_SOURCES,
    L_SCALINGS,
    PADDINGS,
    STRIDES,
    optimizer_names,
)
from experiments import overrides
from experiments.engines import ENGINES
from experiments.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = PROJECT_ROOT / "studies"
PROFILES_DIR = STUDIES_DIR / "profiles"
DEFAULT_PROFILE = "quick"
TUNERS = tuple(ENGINES)


@dataclass
class DataConfig:
    source: str = "embedded"  # embedded photos or the landscape wallpapers; ignored with train_dir
    train_dir: Optional[str] = None  # noqa: UP045  folder of colour photos (instead of source)
    test_dir: Optional[str] = None  # noqa: UP045  photos the best model colorizes (and scores)
    image_size: int = 64
    crops_per_photo: int = 12  # random crops (with flips) per training photo
    val_photos: int = 3  # whole photos held out for validation (embedded, landscapes)
    val_fraction: float = 0.1  # photo folder: share of photos held out for validation
    split_seed: int = 0
    l_scaling: str = "unit"


@dataclass
class ModelConfig:
    architecture: str = "paper"
    kernel_size: int = 3
    padding: str = "same"
    strides: int = 2


@dataclass
class TrainerConfig:
    optimizer: str = "adamax"
    learning_rate: float = 1e-3
    batch_size: int = 16
    epochs: int = 12
    patience: int = 4
    seed: int = 0
    mixed_precision: bool = False  # bfloat16 compute on GPUs; XLA is used where the backend can
    checkpoint_every: int = 60  # seconds between epoch checkpoints (0: every epoch)
    run_eagerly: bool = False  # no graph: tiny smoke runs start sooner; far slower at real sizes


@dataclass
class TrackingConfig:
    system_metrics: bool = True  # CPU, memory (and GPU) figures on each trial's run


@dataclass
class RunConfig:
    study: str = "optimizers"
    name: Optional[str] = None  # noqa: UP045  the study's stored name; None: the study's own
    profile: str = DEFAULT_PROFILE
    tuner: str = "optuna"
    runs_dir: str = "mlruns"
    storage: Optional[str] = None  # noqa: UP045  Optuna storage URL; None: sqlite in runs_dir
    tracking_uri: Optional[str] = None  # noqa: UP045  MLflow URI; None: sqlite in runs_dir
    n_trials: Optional[int] = None  # noqa: UP045  overrides the study's budget
    workers: int = 1  # processes on this machine working on the study
    heartbeat: int = 10  # seconds; a trial of another host silent for 3 beats is retried
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
ALLOWED_VALUES = {
    "tuner": TUNERS,
    "data.source": DATA_SOURCES,
    "data.l_scaling": L_SCALINGS,
    "model.architecture": ARCHITECTURES,
    "model.padding": PADDINGS,
    "model.strides": STRIDES,
    "trainer.optimizer": optimizer_names(),
}
RANGES = {  # key: (lowest, highest) allowed
    "data.image_size": (8, 1024),
    "data.crops_per_photo": (1, 500),
    "data.val_photos": (1, 10_000),
    "model.kernel_size": (1, 15),
    "trainer.batch_size": (1, 4096),
    "trainer.epochs": (1, 100_000),
    "trainer.patience": (0, 100_000),
    "trainer.checkpoint_every": (0, 86_400),
    "workers": (1, 64),
    "heartbeat": (1, 3600),
    "n_trials": (1, 100_000),
}
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _leaf_types(schema: type, prefix: str = "") -> dict[str, type]:
    types = {}
    for item in fields(schema):
        kind = typing.get_type_hints(schema)[item.name]
        kind = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
        if is_dataclass(kind):
            types |= _leaf_types(kind, f"{prefix}{item.name}.")
        else:
            types[f"{prefix}{item.name}"] = kind
    return types


LEAF_TYPES = _leaf_types(RunConfig)


def schema_keys() -> dict[str, Any]:
    """Every dotted key with its schema default."""
    flat = {}
    defaults = OmegaConf.to_container(OmegaConf.structured(RunConfig))
    for key, value in defaults.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{leaf}": leaf_value for leaf, leaf_value in value.items()})
        else:
            flat[key] = value
    return flat


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
    """Where the photos come from: `folder` (data.train_dir) or data.source."""
    return "folder" if cfg.data.train_dir else cfg.data.source


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


REMOTE_SOURCES = ("hf:", "url:")  # data.source=hf:<dataset>[:<split>], url:<url>#sha256=<hex>
REMOTE_FORMS = ("hf:<dataset>[:<split>]", "url:<http(s)://...archive>#sha256=<hex>")


def _check_remote_source(value: str) -> None:
    from colorize.datasets import DataError
    from colorize.datasets.remote import check_source

    try:
        check_source(value)
    except DataError as error:
        raise UsageError(str(error)) from None


def validate(cfg: RunConfig) -> None:
    """Check values the types alone cannot; raises UsageError naming the key."""
    flat = flat_values(cfg)
    for key, allowed in ALLOWED_VALUES.items():
        value = str(flat[key]).lower() if key == "trainer.optimizer" else flat[key]
        if key == "data.source" and str(value).startswith(REMOTE_SOURCES):
            _check_remote_source(value)
            continue
        if value not in allowed:
            if key == "data.source":
                allowed = (*allowed, *REMOTE_FORMS)
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
        args: the overrides.
        study_info: maps a study name to its fixed values ({dotted key: value}) and the dotted
            keys it searches; the fixed values go beneath the user's overrides, and an override
            of a searched key is refused.
    """
    given = overrides.parse(args, LEAF_TYPES, flags=("--help", "--cfg"))
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
