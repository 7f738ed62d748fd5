"""Study definitions (`studies/<name>.yaml`): metric, budget, sampler, pruner, fixed values and
search space, read as data and checked whole when loaded, so a typo stops the run before the
first trial.

A study optimizes one metric (`metric:` and `direction:`) or several (`objectives:`, a list of
`{metric, direction}`): Optuna then searches for the Pareto front, and no pruner can be used.

A search-space entry is keyed by a config leaf name (`optimizer`, `kernel_size`, `epochs`, ...) and
is either `{choices: [...]}` or a range `{low, high, log?, step?}`. Every choice, bound and fixed
value is checked as the configuration would check it (type, allowed values, range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from omegaconf.errors import OmegaConfBaseException

from colorize.metrics import METRIC
from experiments.common.errors import UsageError
from experiments.common.records import OBJECTIVES, PER_EPOCH_OBJECTIVES
from experiments.settings.config import (
    LEAF_TYPES,
    STUDIES_DIR,
    Profile,
    RunConfig,
    leaf_to_key,
    load_named_yaml,
    with_values,
)
from experiments.settings.overrides import closest

STUDY_KEYS = {
    "name",
    "description",
    "metric",
    "direction",
    "objectives",
    "sampler",
    "pruner",
    "budget",
    "fixed",
    "space",
    "comparisons",
}
COMPARISON_KEYS = {"name", "a", "b", "metric", "best_vs_runner_up"}
SAMPLERS = {
    "grid": {"seed"},
    "random": {"seed"},
    "tpe": {"seed", "n_startup_trials"},
    "nsga2": {"seed", "population_size"},  # NSGA-II: multi-objective (one objective works too)
}
DIRECTIONS = ("minimize", "maximize")
OBJECTIVE_KEYS = {"metric", "direction"}
# Each pruner with the options it takes (Optuna's names); the Optuna engine builds it and
# refuses values Optuna does not take.
PRUNERS = {
    "none": set(),
    "median": {"n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"},
    "hyperband": {"min_resource", "max_resource", "reduction_factor", "bootstrap_count"},
    "successive_halving": {
        "min_resource",
        "reduction_factor",
        "min_early_stopping_rate",
        "bootstrap_count",
    },
}


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
        return LEAF_TYPES.get(self.key) is int

    def describe(self) -> dict[str, Any]:
        """The entry as data (for the fingerprint and the `--cfg` listing)."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Objective:
    """One metric a study optimizes, and which way."""

    metric: str
    direction: str

    def describe(self) -> str:
        return f"{self.metric} ({self.direction})"


@dataclass(frozen=True)
class Comparison:
    """A comparison a raced study judges after every round (`experiments.engines.racing`):
    group `a` against group `b` (their settings, seeds aside) on `metric`, or, with
    `best_vs_runner_up`, the best group against the runner-up on the study's metric."""

    name: str
    metric: str
    a: tuple[tuple[str, Any], ...] = ()
    b: tuple[tuple[str, Any], ...] = ()
    best_vs_runner_up: bool = False

    def describe(self) -> dict[str, Any]:
        """The comparison as data (for the fingerprint and the race's records)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "a": dict(self.a),
            "b": dict(self.b),
            "best_vs_runner_up": self.best_vs_runner_up,
        }


@dataclass
class StudySpec:
    """A study file, checked. `metric` and `direction` are its first objective; `objectives`
    holds them all (one for most studies)."""

    name: str
    description: str
    metric: str
    direction: str
    sampler: dict
    pruner: dict
    n_trials: int | None
    fixed: dict[str, Any]
    space: dict[str, ParamSpec] = field(default_factory=dict)
    objectives: list[Objective] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    # racing: the seeds the grid starts with (the space's seed choices reach the race's cap)
    race_start_seeds: list | None = None

    def __post_init__(self):
        if not self.objectives:
            self.objectives = [Objective(self.metric, self.direction)]

    @property
    def is_multi(self) -> bool:
        """Several objectives: the study searches for their Pareto front."""
        return len(self.objectives) > 1

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def describe_objectives(self) -> str:
        """'delta_e2000 (minimize), colorfulness_gap (minimize)'."""
        return ", ".join(o.describe() for o in self.objectives)

    @property
    def is_grid(self) -> bool:
        return self.sampler["type"] == "grid"

    @property
    def searched_keys(self) -> set[str]:
        return {param.key for param in self.space.values()}

    def grid(self) -> dict[str, list]:
        """The points queued when the study starts (a race adds its seeds round by round)."""
        grid = {name: list(p.choices) for name, p in self.space.items()}
        if self.race_start_seeds is not None:
            grid["seed"] = list(self.race_start_seeds)
        return grid

    def grid_size(self) -> int:
        return math.prod(len(choices) for choices in self.grid().values())

    def total_trials(self, profile: Profile, override: int | None = None) -> int:
        """Trials the study runs in all (across restarts)."""
        if override is not None:
            return override
        if self.is_grid:
            return self.grid_size()
        return max(1, round((self.n_trials or 10) * profile.trial_scale))

    def for_profile(self, profile: Profile, epochs: int) -> StudySpec:
        """The study as the profile scales it: fewer seeds, and start-up trials and warm-up
        epochs of the sampler and pruner that fit the profile's budget (so a smoke study can
        still prune). `epochs`: the epochs a trial trains at this profile."""
        space = dict(self.space)
        seed = space.get("seed")
        if seed is not None and seed.choices and profile.max_seeds:
            space["seed"] = replace(seed, choices=seed.choices[: profile.max_seeds])
        sampler, pruner = dict(self.sampler), dict(self.pruner)
        total = self.total_trials(profile)
        for options in (sampler, pruner):
            if "n_startup_trials" in options and not self.is_grid:
                scaled = max(1, round(options["n_startup_trials"] * profile.trial_scale))
                options["n_startup_trials"] = min(scaled, max(1, total - 1))
        if "population_size" in sampler:  # NSGA-II needs at least 2 a generation
            scaled = max(2, round(sampler["population_size"] * profile.trial_scale))
            sampler["population_size"] = min(scaled, max(2, total))
        if "n_warmup_steps" in pruner:
            pruner["n_warmup_steps"] = min(pruner["n_warmup_steps"], max(0, epochs - 2))
        return replace(self, space=space, sampler=sampler, pruner=pruner)


def _number(value: Any, where: str) -> float | int:
    """A YAML bound as a number: PyYAML reads `1e-4` (no dot) as text, so text is parsed."""
    if isinstance(value, bool) or value is None:
        raise UsageError(f"{where} must be a number, not {value!r}")
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where} must be a number, not {value!r}") from None


def _check_value(key: str, value: Any, where: str) -> None:
    """Check one value of `key` as an override of it would be checked."""
    try:
        with_values(RunConfig(), {key: value})
    except OmegaConfBaseException:
        kind = getattr(LEAF_TYPES.get(key), "__name__", "value")
        raise UsageError(f"{where}: {value!r} is not a valid {kind} for {key}") from None
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None


def _param(name: str, raw: Any, origin: str) -> ParamSpec:
    keys = leaf_to_key()
    where = f"{origin}: space.{name}"
    if name not in keys:
        raise UsageError(f"{origin}: unknown search-space key {name!r}{closest(name, keys)}")
    key = keys[name]
    if not isinstance(raw, dict):
        raise UsageError(f"{where} must be {{choices: [...]}} or {{low, high}}")
    extra = set(raw) - {"choices", "low", "high", "log", "step"}
    if extra:
        raise UsageError(f"{where} has unknown field(s) {', '.join(sorted(extra))}")
    if "choices" in raw:
        if not isinstance(raw["choices"], list) or not raw["choices"]:
            raise UsageError(f"{where}.choices must be a non-empty list")
        for choice in raw["choices"]:
            _check_value(key, choice, f"{where} choice {choice!r}")
        return ParamSpec(name, key, choices=list(raw["choices"]))
    if "low" not in raw or "high" not in raw:
        raise UsageError(f"{where} needs low and high (or a choices list)")
    low, high = _number(raw["low"], f"{where}.low"), _number(raw["high"], f"{where}.high")
    if LEAF_TYPES.get(key) is int and not (float(low).is_integer() and float(high).is_integer()):
        raise UsageError(f"{where}: {key} takes integers; low and high must be integers")
    if LEAF_TYPES.get(key) not in (int, float):
        raise UsageError(f"{where}: {key} is not numeric; give choices instead of low/high")
    if low >= high:
        raise UsageError(f"{where} needs low < high, got low {low}, high {high}")
    for bound in (low, high):
        _check_value(key, bound, f"{where} bound {bound}")
    step = raw.get("step")
    return ParamSpec(
        name,
        key,
        low=int(low) if LEAF_TYPES[key] is int else float(low),
        high=int(high) if LEAF_TYPES[key] is int else float(high),
        log=bool(raw.get("log")),
        step=None if step is None else _number(step, f"{where}.step"),
    )


def _options(raw: Any, allowed: dict | tuple, what: str, origin: str, default: str) -> dict:
    options = {"type": default, **(raw or {})} if isinstance(raw or {}, dict) else None
    if options is None:
        raise UsageError(f"{origin}: {what} must be a mapping such as {{type: {default}}}")
    if options["type"] not in allowed:
        raise UsageError(
            f"{origin}: {what} type {options['type']!r} not allowed; allowed: {', '.join(allowed)}"
        )
    return options


def _search_options(raw: dict, objectives: list[Objective], origin: str) -> tuple[dict, dict]:
    """The study file's sampler and pruner, with their options checked."""
    sampler = _options(raw.get("sampler"), SAMPLERS, "sampler", origin, "grid")
    sampler.setdefault("seed", 0)
    if sampler["type"] == "tpe":
        sampler.setdefault("n_startup_trials", 5)  # Optuna's default, written out to be scaled
    if sampler["type"] == "nsga2":
        sampler.setdefault("population_size", 50)  # Optuna's default, written out to be scaled
        size = sampler["population_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise UsageError(
                f"{origin}: sampler nsga2 population_size must be an integer of at least 2, "
                f"not {size!r}"
            )
    extra = set(sampler) - {"type"} - SAMPLERS[sampler["type"]]
    if extra:
        raise UsageError(
            f"{origin}: sampler {sampler['type']} has unknown option(s) {', '.join(sorted(extra))}"
        )
    pruner = _options(raw.get("pruner"), PRUNERS, "pruner", origin, "none")
    extra = set(pruner) - {"type"} - PRUNERS[pruner["type"]]
    if extra:
        raise UsageError(
            f"{origin}: pruner {pruner['type']} has unknown option(s) {', '.join(sorted(extra))}"
            f"; allowed: {', '.join(sorted(PRUNERS[pruner['type']])) or 'none'}"
        )
    if pruner["type"] != "none" and len(objectives) > 1:
        raise UsageError(
            f"{origin}: pruner {pruner['type']} not allowed with several objectives: Optuna "
            "cannot prune a multi-objective study; use pruner: {type: none}"
        )
    if pruner["type"] != "none" and objectives[0].metric not in PER_EPOCH_OBJECTIVES:
        raise UsageError(
            f"{origin}: pruning needs a per-epoch metric ({', '.join(PER_EPOCH_OBJECTIVES)})"
        )
    return sampler, pruner


def _fixed_values(raw: dict, origin: str) -> dict[str, Any]:
    """The study file's fixed values by dotted key, each checked as an override of it."""
    keys = leaf_to_key()
    fixed = {}
    for key, value in (raw.get("fixed") or {}).items():
        dotted = keys.get(key, key)
        if dotted not in keys.values():
            raise UsageError(f"{origin}: unknown fixed key {key!r}{closest(key, keys)}")
        _check_value(dotted, value, f"{origin}: fixed {key}")
        fixed[dotted] = value
    return fixed


def _check_heads_share(metric: str, space: dict[str, ParamSpec], origin: str) -> None:
    """A study that compares heads ranks them on a metric they share: each head's validation
    loss measures something else (MSE on a/b against cross-entropy over bins)."""
    heads = next((p for p in space.values() if p.key == "trainer.loss"), None)
    if heads is not None and OBJECTIVES[metric].head_specific:
        shared = [name for name, m in OBJECTIVES.items() if not m.head_specific]
        raise UsageError(
            f"{origin}: metric {metric} cannot rank trials of different heads "
            f"(trainer.loss is searched); use one they share: {', '.join(shared)}"
        )


def _objective(metric: Any, direction: Any, where: str, origin: str) -> Objective:
    """One objective checked: a metric a study may optimize, and a direction."""
    if metric not in OBJECTIVES:
        why = "is not an objective a study may optimize" if metric in METRIC else "not allowed"
        raise UsageError(
            f"{origin}: {where}metric {metric!r} {why}; allowed: {', '.join(OBJECTIVES)}"
        )
    direction = OBJECTIVES[metric].direction if direction is None else direction
    if direction not in DIRECTIONS:
        raise UsageError(
            f"{origin}: {where}direction must be minimize or maximize, not {direction!r}"
        )
    return Objective(metric, direction)


def _objectives(raw: dict, origin: str) -> list[Objective]:
    """`metric:`/`direction:` (one objective) or `objectives:` (several), never both."""
    if "objectives" not in raw:
        return [_objective(raw.get("metric", "val_loss"), raw.get("direction"), "", origin)]
    if "metric" in raw or "direction" in raw:
        raise UsageError(
            f"{origin}: objectives and metric/direction exclude each other; give objectives "
            "(a list of {metric, direction}) or metric and direction"
        )
    entries = raw["objectives"]
    if not isinstance(entries, list) or not entries:
        raise UsageError(
            f"{origin}: objectives must be a non-empty list such as "
            "[{metric: delta_e2000, direction: minimize}]"
        )
    objectives = []
    for index, entry in enumerate(entries):
        where = f"objectives[{index}]."
        if not isinstance(entry, dict) or "metric" not in entry:
            raise UsageError(f"{origin}: objectives[{index}] must be {{metric, direction}}")
        extra = set(entry) - OBJECTIVE_KEYS
        if extra:
            raise UsageError(
                f"{origin}: objectives[{index}] has unknown field(s) {', '.join(sorted(extra))}"
                "; allowed: direction, metric"
            )
        objectives.append(_objective(entry["metric"], entry.get("direction"), where, origin))
    metrics = [o.metric for o in objectives]
    repeated = sorted({m for m in metrics if metrics.count(m) > 1})
    if repeated:
        raise UsageError(f"{origin}: objectives name {', '.join(repeated)} more than once")
    return objectives


def _side(raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """One side of a comparison: its settings, seeds aside (checked against the space when the
    study races, `experiments.engines.racing.raced`)."""
    if not isinstance(raw, dict) or not raw:
        raise UsageError(
            f"{where} must be a mapping of settings to values, e.g. {{optimizer: adam}}"
        )
    return tuple(sorted(raw.items()))


def _comparisons(raw: dict, objectives, origin: str) -> list:
    """The study's declared comparisons, each with a metric a study may optimize."""
    entries = raw.get("comparisons") or []
    if not isinstance(entries, list):
        raise UsageError(f"{origin}: comparisons must be a list")
    found = []
    for index, entry in enumerate(entries):
        where = f"{origin}: comparisons[{index}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} must be a mapping")
        extra = set(entry) - COMPARISON_KEYS
        if extra:
            raise UsageError(
                f"{where} has unknown field(s) {', '.join(sorted(extra))}; allowed: "
                f"{', '.join(sorted(COMPARISON_KEYS))}"
            )
        metric = entry.get("metric", objectives[0].metric)
        if metric not in OBJECTIVES:
            raise UsageError(
                f"{where}: metric {metric!r} not allowed; allowed: {', '.join(OBJECTIVES)}"
            )
        if entry.get("best_vs_runner_up"):
            if "a" in entry or "b" in entry:
                raise UsageError(f"{where}: best_vs_runner_up takes no a or b")
            name = str(entry.get("name", "best vs runner-up"))
            found.append(Comparison(name, metric, best_vs_runner_up=True))
            continue
        a, b = (
            _side(entry.get("a"), f"{where}.a"),
            _side(entry.get("b"), f"{where}.b"),
        )
        if a == b:
            raise UsageError(f"{where}: a and b are the same group")
        default = " vs ".join(" ".join(str(v) for _, v in side) for side in (a, b))
        found.append(Comparison(str(entry.get("name", default)), metric, a, b))
    return found


def load_study(name: str) -> StudySpec:
    """Read and check `studies/<name>.yaml`; raises UsageError naming the file and the problem."""
    path, raw = load_named_yaml(STUDIES_DIR, name, "study")
    origin = f"study {path}"
    unknown = set(raw) - STUDY_KEYS
    if unknown:
        raise UsageError(
            f"{origin}: unknown field(s) {', '.join(sorted(unknown))}; allowed: "
            f"{', '.join(sorted(STUDY_KEYS))}"
        )
    objectives = _objectives(raw, origin)
    sampler, pruner = _search_options(raw, objectives, origin)
    space = {key: _param(key, value, origin) for key, value in (raw.get("space") or {}).items()}
    if not space:
        raise UsageError(f"{origin}: the search space is empty")
    for objective in objectives:
        _check_heads_share(objective.metric, space, origin)
    if sampler["type"] == "grid" and any(p.choices is None for p in space.values()):
        raise UsageError(f"{origin}: a grid sampler needs choices for every search-space key")
    budget = raw.get("budget") or {}
    return StudySpec(
        name=raw.get("name", name),
        description=" ".join(str(raw.get("description", "")).split()),
        metric=objectives[0].metric,
        direction=objectives[0].direction,
        objectives=objectives,
        sampler=sampler,
        pruner=pruner,
        n_trials=budget.get("n_trials"),
        fixed=_fixed_values(raw, origin),
        space=space,
        comparisons=_comparisons(raw, objectives, origin),
    )
