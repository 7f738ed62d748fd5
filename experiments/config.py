"""The typed configuration of a study run, composed from defaults, a profile, a study and overrides.

Order (later wins): schema defaults < `studies/profiles/<profile>.yaml` < the study's `fixed`
values < command-line overrides (`key=value`, dotted keys as in Hydra). Every key and value is
checked: an unknown key, a wrong type or a value outside what is allowed is a `UsageError` that
names it and lists what is allowed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional  # noqa: UP035  (omegaconf reads typing.Optional)

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = PROJECT_ROOT / "studies"
PROFILES_DIR = STUDIES_DIR / "profiles"

OPTIMIZER_CHOICES = ("adamax", "adam", "rmsprop", "rmse")
TUNERS = ("optuna", "keras_tuner")


@dataclass
class DataConfig:
    train_dir: Optional[str] = None  # noqa: UP045  folder of colour photos; None: embedded default
    test_dir: Optional[str] = None  # noqa: UP045  grayscale photos the best model colorizes
    image_size: int = 64
    crops_per_photo: int = 12  # embedded default: random crops per training photo
    val_photos: int = 3  # embedded default: whole photos held out for validation
    val_fraction: float = 0.1  # photo folder: share held out for validation
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


@dataclass
class RunConfig:
    study: str = "optimizers"
    profile: str = "quick"
    tuner: str = "optuna"
    runs_dir: str = "mlruns"
    storage: Optional[str] = None  # noqa: UP045  Optuna storage URL; None: sqlite in runs_dir
    tracking_uri: Optional[str] = None  # noqa: UP045  MLflow URI; None: sqlite in runs_dir
    n_trials: Optional[int] = None  # noqa: UP045  overrides the study's budget
    workers: int = 1  # processes on this machine working on the study
    heartbeat: int = 10  # seconds; a trial silent for 3 beats is failed and retried
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class Profile:
    name: str = MISSING
    description: str = ""
    epoch_scale: float = 1.0
    max_seeds: Optional[int] = None  # noqa: UP045
    trial_scale: float = 1.0


SECTIONS = ("data", "model", "trainer")


def schema_keys() -> dict[str, Any]:
    """Every dotted key with its default."""
    flat = {}
    defaults = OmegaConf.to_container(OmegaConf.structured(RunConfig))
    for key, value in defaults.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{leaf}": leaf_value for leaf, leaf_value in value.items()})
        else:
            flat[key] = value
    return flat


def leaf_to_key() -> dict[str, str]:
    """Leaf name (e.g. `optimizer`) -> dotted key (`trainer.optimizer`); leaves are unique."""
    return {key.split(".")[-1]: key for key in schema_keys() if "." in key}


def available_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def closest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def parse_overrides(args: list[str]) -> dict[str, str]:
    """`key=value` strings -> {key: value}; keys are checked against the schema."""
    keys = schema_keys()
    overrides = {}
    for arg in args:
        if "=" not in arg:
            raise UsageError(f"expected key=value, got {arg!r} (see --help)")
        key, value = arg.split("=", 1)
        key = key.strip().lstrip("+")
        if key not in keys:
            section = key.split(".")[0]
            nearby = [k for k in keys if k.startswith(section + ".")] or list(keys)
            raise UsageError(
                f"unknown key {key!r}{closest(key, list(keys))}; allowed: {', '.join(nearby)}"
            )
        overrides[key] = value
    return overrides


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
            f"unknown {kind} {name!r}{closest(name, names)}; allowed: {', '.join(names)}"
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


def _merge(base, values: dict | list[str], origin: str):
    try:
        update = (
            OmegaConf.from_dotlist(values)
            if isinstance(values, list)
            else OmegaConf.create(values)
        )
        return OmegaConf.merge(base, update)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or ""
        message = str(getattr(error, "msg", error)).splitlines()[0]
        raise UsageError(f"{origin}: {key + ': ' if key else ''}{message}") from None


ALLOWED_VALUES = {
    "tuner": TUNERS,
    "data.l_scaling": ("unit", "centered", "raw"),
    "model.architecture": ("paper", "unet"),
    "model.padding": ("same", "valid"),
    "model.strides": (1, 2),
    "trainer.optimizer": OPTIMIZER_CHOICES,
}
MINIMUMS = {
    "data.image_size": 8,
    "data.crops_per_photo": 1,
    "data.val_photos": 1,
    "model.kernel_size": 1,
    "trainer.batch_size": 1,
    "trainer.epochs": 1,
    "trainer.patience": 0,
    "trainer.checkpoint_every": 0,
    "workers": 1,
    "heartbeat": 1,
    "n_trials": 1,
}


def validate(cfg: RunConfig) -> None:
    """Check values the types alone cannot; raises UsageError naming the key."""
    flat = {}
    for key in schema_keys():
        section, _, leaf = key.partition(".")
        flat[key] = getattr(getattr(cfg, section), leaf) if leaf else getattr(cfg, key)
    for key, allowed in ALLOWED_VALUES.items():
        value = flat[key]
        if key == "trainer.optimizer":
            value = str(value).lower()
        if value not in allowed:
            listed = ", ".join(map(str, allowed))
            raise UsageError(f"{key}={flat[key]} is not allowed; allowed: {listed}")
    for key, minimum in MINIMUMS.items():
        if flat[key] is not None and flat[key] < minimum:
            raise UsageError(f"{key}={flat[key]} is out of range; must be at least {minimum}")
    if cfg.trainer.learning_rate <= 0:
        raise UsageError(f"trainer.learning_rate={cfg.trainer.learning_rate} must be positive")
    if not 0 < cfg.data.val_fraction < 1:
        raise UsageError(f"data.val_fraction={cfg.data.val_fraction} must be between 0 and 1")
    if cfg.data.image_size % 8:
        raise UsageError(
            f"data.image_size={cfg.data.image_size} must be a multiple of 8 (the network halves "
            "it three times)"
        )
    if cfg.model.kernel_size % 2 == 0:
        raise UsageError(f"model.kernel_size={cfg.model.kernel_size} must be odd (3, 5, 7, ...)")


def compose(args: list[str], study_fixed_loader=None) -> tuple[RunConfig, Profile]:
    """Compose the run configuration from command-line `key=value` arguments.

    Args:
        args: the overrides.
        study_fixed_loader: maps a study name to its `fixed` values ({leaf or dotted key: value});
            used to apply the study's fixed settings beneath the user's overrides.
    """
    overrides = parse_overrides(args)
    base = OmegaConf.structured(RunConfig)
    top = _merge(base, [f"{k}={v}" for k, v in overrides.items() if "." not in k], "override")
    profile, profile_values = load_profile(top.profile)
    cfg = _merge(base, profile_values, f"profile {profile.name}")
    if study_fixed_loader is not None:
        fixed = study_fixed_loader(top.study)
        cfg = _merge(cfg, [f"{k}={v}" for k, v in fixed.items()], f"study {top.study} fixed")
    cfg = _merge(cfg, [f"{k}={v}" for k, v in overrides.items()], "override")
    run_config: RunConfig = OmegaConf.to_object(cfg)
    validate(run_config)
    return run_config, profile


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: RunConfig) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def with_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """A copy of `cfg` with dotted keys set (values already typed), validated."""
    merged = OmegaConf.merge(OmegaConf.structured(cfg), OmegaConf.from_dotlist([]))
    for key, value in values.items():
        OmegaConf.update(merged, key, value, merge=False)
    result: RunConfig = OmegaConf.to_object(merged)
    validate(result)
    return result
