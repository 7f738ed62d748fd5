"""Study definitions (`studies/<name>.yaml`): metric, budget, sampler, pruner, fixed values and
search space, read as data and checked; plus the Optuna sampler and pruner they name.

A search-space entry is keyed by a config leaf name (`optimizer`, `kernel_size`, `epochs`, ...) and
is either `{choices: [...]}` or a range `{low, high, log?, step?}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from experiments.config import (
    STUDIES_DIR,
    Profile,
    closest,
    leaf_to_key,
    load_named_yaml,
)
from experiments.errors import UsageError

STUDY_KEYS = {
    "name",
    "description",
    "metric",
    "direction",
    "sampler",
    "pruner",
    "budget",
    "fixed",
    "space",
}
# Metrics known after every epoch can drive pruning; the others exist only at the end of a trial.
EPOCH_METRICS = {"val_loss": "minimize", "val_accuracy": "maximize"}
FINAL_METRICS = {
    "psnr": "maximize",
    "ssim": "maximize",
    "delta_e2000": "minimize",
    "ab_auc": "maximize",
}
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband", "successive_halving")


@dataclass
class ParamSpec:
    name: str
    key: str
    choices: list | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    @property
    def is_int(self) -> bool:
        return (
            all(isinstance(v, int) for v in (self.low, self.high) if v is not None)
            and not self.log
        )


@dataclass
class StudySpec:
    name: str
    description: str
    metric: str
    direction: str
    sampler: dict
    pruner: dict
    n_trials: int | None
    fixed: dict[str, Any]
    space: dict[str, ParamSpec] = field(default_factory=dict)

    @property
    def is_grid(self) -> bool:
        return self.sampler["type"] == "grid"

    def grid(self) -> dict[str, list]:
        return {name: list(p.choices) for name, p in self.space.items()}

    def grid_size(self) -> int:
        return math.prod(len(p.choices) for p in self.space.values())

    def total_trials(self, profile: Profile, override: int | None = None) -> int:
        """Trials the study runs in all (across restarts)."""
        if override is not None:
            return override
        if self.is_grid:
            return self.grid_size()
        return max(1, round((self.n_trials or 10) * profile.trial_scale))

    def for_profile(self, profile: Profile) -> StudySpec:
        """The study as the profile scales it: fewer seeds where the profile says so."""
        space = dict(self.space)
        seed = space.get("seed")
        if seed is not None and seed.choices and profile.max_seeds:
            space["seed"] = ParamSpec("seed", seed.key, choices=seed.choices[: profile.max_seeds])
        return StudySpec(**{**self.__dict__, "space": space})


def _param(name: str, raw: Any, origin: str) -> ParamSpec:
    keys = leaf_to_key()
    if name not in keys:
        raise UsageError(f"{origin}: unknown search-space key {name!r}{closest(name, list(keys))}")
    if not isinstance(raw, dict):
        raise UsageError(f"{origin}: space.{name} must be {{choices: [...]}} or {{low, high}}")
    extra = set(raw) - {"choices", "low", "high", "log", "step"}
    if extra:
        raise UsageError(f"{origin}: space.{name} has unknown field(s) {', '.join(sorted(extra))}")
    if "choices" in raw:
        if not isinstance(raw["choices"], list) or not raw["choices"]:
            raise UsageError(f"{origin}: space.{name}.choices must be a non-empty list")
        return ParamSpec(name, keys[name], choices=list(raw["choices"]))
    if "low" not in raw or "high" not in raw or raw["low"] >= raw["high"]:
        raise UsageError(f"{origin}: space.{name} needs low < high (or a choices list)")
    return ParamSpec(
        name,
        keys[name],
        low=raw["low"],
        high=raw["high"],
        log=bool(raw.get("log")),
        step=raw.get("step"),
    )


def load_study(name: str) -> StudySpec:
    """Read and check `studies/<name>.yaml`; raises UsageError naming the file and the problem."""
    path, raw = load_named_yaml(STUDIES_DIR, name, "study")
    origin = f"study {path}"
    unknown = set(raw) - STUDY_KEYS
    if unknown:
        raise UsageError(
            f"{origin}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(STUDY_KEYS))}"
        )
    metric = raw.get("metric", "val_loss")
    directions = EPOCH_METRICS | FINAL_METRICS
    if metric not in directions:
        raise UsageError(
            f"{origin}: metric {metric!r} not allowed; allowed: {', '.join(directions)}"
        )
    direction = raw.get("direction", directions[metric])
    if direction not in ("minimize", "maximize"):
        raise UsageError(f"{origin}: direction must be minimize or maximize")
    sampler = {"type": "grid", "seed": 0, **(raw.get("sampler") or {})}
    if sampler["type"] not in SAMPLERS:
        raise UsageError(
            f"{origin}: sampler type {sampler['type']!r} not allowed; allowed: {', '.join(SAMPLERS)}"
        )
    pruner = {"type": "none", **(raw.get("pruner") or {})}
    if pruner["type"] not in PRUNERS:
        raise UsageError(
            f"{origin}: pruner type {pruner['type']!r} not allowed; allowed: {', '.join(PRUNERS)}"
        )
    if pruner["type"] != "none" and metric not in EPOCH_METRICS:
        raise UsageError(
            f"{origin}: pruning needs a per-epoch metric ({', '.join(EPOCH_METRICS)})"
        )
    space = {key: _param(key, value, origin) for key, value in (raw.get("space") or {}).items()}
    if not space:
        raise UsageError(f"{origin}: the search space is empty")
    if sampler["type"] == "grid" and any(p.choices is None for p in space.values()):
        raise UsageError(f"{origin}: a grid sampler needs choices for every search-space key")
    keys = leaf_to_key()
    fixed = {}
    for key, value in (raw.get("fixed") or {}).items():
        dotted = keys.get(key, key)
        if dotted not in keys.values():
            raise UsageError(f"{origin}: unknown fixed key {key!r}{closest(key, list(keys))}")
        fixed[dotted] = value
    budget = raw.get("budget") or {}
    return StudySpec(
        name=raw.get("name", name),
        description=" ".join(str(raw.get("description", "")).split()),
        metric=metric,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        n_trials=budget.get("n_trials"),
        fixed=fixed,
        space=space,
    )


def suggest(trial, spec: StudySpec) -> dict[str, Any]:
    """Ask an Optuna trial for one value per search-space entry."""
    values = {}
    for name, param in spec.space.items():
        if param.choices is not None:
            values[name] = trial.suggest_categorical(name, param.choices)
        elif param.is_int:
            values[name] = trial.suggest_int(name, param.low, param.high, step=param.step or 1)
        else:
            values[name] = trial.suggest_float(
                name, param.low, param.high, log=param.log, step=param.step
            )
    return values


def make_sampler(spec: StudySpec):
    import optuna

    seed = spec.sampler.get("seed")
    kind = spec.sampler["type"]
    if kind == "grid":
        return optuna.samplers.GridSampler(spec.grid(), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=spec.sampler.get("n_startup_trials", 5)
    )


def make_pruner(spec: StudySpec):
    import optuna

    options = {k: v for k, v in spec.pruner.items() if k != "type"}
    kind = spec.pruner["type"]
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(**options)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    return optuna.pruners.SuccessiveHalvingPruner(**options)
