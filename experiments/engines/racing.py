"""Racing a study's seeds: rounds of one more seed per group still in play, until every
comparison the study declares is decided or the cap is reached.

    python -m experiments.run study=optimizers race=true [max_seeds=10]

The study starts with its grid (the seeds its profile keeps). After each round, every declared
comparison (`comparisons:` in the study file) is judged with a repeated 95 % interval that keeps
its level over all the race's looks (`colorize.sequential`); a decided comparison keeps its
verdict and its groups get no more seeds for it; the next round gives one more seed to each group
of an undecided comparison. The race ends when every comparison is decided or its groups have
`max_seeds` seeds.

Everything is derived from the stored trials and the rounds planned in the Optuna study's
attributes, never held only in memory: a killed race resumes where it was, and the worker that
plans a round does it under the store's lock, so two workers never add the same seed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from colorize import sequential
from colorize.stats import Interval
from experiments.common.errors import UsageError
from experiments.common.records import OBJECTIVES
from experiments.settings.study_spec import Comparison, StudySpec

SEED = "seed"
ROUND_ATTR_PREFIX = "race_round_"  # study attribute per planned round: {"seed", "groups"}
METRICS_ATTR = "race_metrics"  # trial attribute: the compared metrics' values
RACE_ARTIFACT = "race.json"  # on the study's run: every look of every comparison

Group = tuple[tuple[str, Any], ...]  # a group's settings, seed aside, sorted by name


def raced(cfg, spec: StudySpec) -> StudySpec:
    """The study as `cfg` runs it: with `race=true`, its seed choices reach `max_seeds` (the
    grid still starts with the seeds the profile keeps); unchanged otherwise.

    Raises:
        UsageError: racing asked of a study that cannot race, or max_seeds without racing.
    """
    if not cfg.race:
        if cfg.max_seeds != 10:  # the default: a cap given alone is a mistake
            raise UsageError(f"max_seeds={cfg.max_seeds} caps a race; add race=true")
        return spec
    where = f"race=true: study {spec.name}"
    seed = spec.space.get(SEED)
    if cfg.engine != "optuna":
        raise UsageError(f"race=true needs engine=optuna, not engine={cfg.engine}")
    if not spec.is_grid or seed is None or seed.choices is None:
        raise UsageError(f"{where} needs a grid sampler and seed choices in its space")
    if spec.is_multi:
        raise UsageError(f"{where} has several objectives; racing judges one metric at a time")
    if not spec.comparisons:
        raise UsageError(
            f"{where} declares no comparisons (studies/{spec.name}.yaml, comparisons:)"
        )
    groups = spec.grid()
    names = sorted(n for n in spec.space if n != SEED)
    for comparison in spec.comparisons:
        for side in (comparison.a, comparison.b) if not comparison.best_vs_runner_up else ():
            settings = dict(side)
            if sorted(settings) != names or any(v not in groups[k] for k, v in side):
                raise UsageError(
                    f"{where}: comparison {comparison.name!r} names {shown(side)}, not a group "
                    f"of the study (a value of each of {', '.join(names)})"
                )
    start = list(seed.choices)
    if cfg.max_seeds < len(start):
        raise UsageError(
            f"max_seeds={cfg.max_seeds} is fewer than the {len(start)} seeds the study starts with"
        )
    seeds = list(start)
    candidate = 0
    while len(seeds) < cfg.max_seeds:  # new seeds: the smallest integers not yet used
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    space = dict(spec.space)
    space[SEED] = replace(seed, choices=seeds)
    return replace(spec, space=space, race_start_seeds=start)


def group_of(params: dict[str, Any]) -> Group:
    return tuple(sorted((k, v) for k, v in params.items() if k != SEED))


def shown(group: Group) -> str:
    return " ".join(f"{k}={v}" for k, v in group) or "(one setting)"


def slug(name: str) -> str:
    """A comparison's name as an MLflow metric key part: 'adamax_vs_rmsprop'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_").lower() or "comparison"


@dataclass
class TrialInfo:
    """What the race reads of a trial: its params, state and compared metrics' values."""

    params: dict[str, Any]
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING or WAITING
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ComparisonLook:
    """One comparison at one look: its groups, interval and whether it is decided."""

    comparison: Comparison
    a: Group | None
    b: Group | None
    look: sequential.Look | None
    decided: bool
    scale: float

    @property
    def interval(self) -> Interval | None:
        return self.look.interval if self.look else None

    def line(self) -> str:
        """'adamax vs rmsprop (val_accuracy): +5.2 (95 % CI ...), decided'."""
        name = f"{self.comparison.name} ({self.comparison.metric})"
        if self.look is None or self.a is None or self.b is None:
            return f"{name}: no two groups with finished trials yet"
        interval = self.interval
        scaled = Interval(
            interval.difference * self.scale,
            interval.low * self.scale,
            interval.high * self.scale,
            interval.test,
            interval.enough,
        )
        digits = 2 if self.scale != 1 else 4
        state = "decided" if self.decided else "undecided"
        kind = "paired" if self.look.paired else "Welch"
        if math.isnan(scaled.low):  # too few seeds yet: the difference alone
            why = scaled.test.rsplit(": ", 1)[-1]
            shown_interval = f"{scaled.difference:+.{digits}f} (no interval: {why})"
        else:
            shown_interval = (
                f"{scaled.difference:+.{digits}f} (95 % CI {scaled.low:+.{digits}f} to "
                f"{scaled.high:+.{digits}f} over all looks)"
            )
        return (
            f"{name}: {shown(self.a)} minus {shown(self.b)} {shown_interval} at "
            f"{self.look.n} seeds ({kind}), {state}"
        )

    def verdict(self) -> str:
        """The comparison's verdict in words."""
        if self.look is None or self.a is None or self.b is None:
            return f"{self.comparison.name}: inconclusive (no two groups to compare)"
        direction = OBJECTIVES[self.comparison.metric].direction
        sign = self.interval.sign() if self.decided else 0
        if sign == 0:
            word = "inconclusive"
        else:
            better = (sign > 0) == (direction == "maximize")
            word = f"{shown(self.a)} {'better' if better else 'worse'} than {shown(self.b)}"
        return f"{self.comparison.name} on {self.comparison.metric}: {word}"

    def record(self) -> dict[str, Any]:
        interval = self.interval
        return {
            "comparison": self.comparison.name,
            "metric": self.comparison.metric,
            "a": shown(self.a) if self.a else None,
            "b": shown(self.b) if self.b else None,
            "seeds": self.look.n if self.look else 0,
            "paired": bool(self.look and self.look.paired),
            "difference": _number(interval.difference * self.scale) if interval else None,
            "low": _number(interval.low * self.scale) if interval else None,
            "high": _number(interval.high * self.scale) if interval else None,
            "decided": self.decided,
            "test": interval.test if interval else "",
        }


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class RaceState:
    """The race as the stored trials and rounds say it is.

    Attributes:
        looks: per look (0: the starting seeds, k: after round k), each comparison's look.
        rounds: the planned rounds, each {"seed": s, "groups": [group, ...]}.
        next_round: the round to plan next ({"seed", "groups"}), or None when the race is over
            or a round is still running.
        over: every comparison decided, or the cap reached.
    """

    looks: list[list[ComparisonLook]]
    rounds: list[dict]
    next_round: dict | None
    over: bool
    max_seeds: int

    def seeds_a_group(self, trials: list[TrialInfo]) -> dict[Group, int]:
        counts: dict[Group, int] = {}
        for trial in trials:
            if trial.state == "COMPLETE":
                group = group_of(trial.params)
                counts[group] = counts.get(group, 0) + 1
        return counts

    def record(self) -> dict[str, Any]:
        return {
            "method": sequential.METHOD,
            "max_seeds": self.max_seeds,
            "rounds": [
                {"seed": r["seed"], "groups": [shown(_as_group(g)) for g in r["groups"]]}
                for r in self.rounds
            ],
            "looks": [[c.record() for c in look] for look in self.looks],
            "over": self.over,
        }


def _as_group(raw) -> Group:
    return tuple((str(k), v) for k, v in raw)


class Race:
    """The race of one study: its comparisons, seeds and cap."""

    def __init__(self, spec: StudySpec):
        self.spec = spec
        self.start_seeds = list(spec.race_start_seeds or [])
        self.seeds = list(spec.space[SEED].choices)
        self.max_seeds = len(self.seeds)
        self.metrics = sorted({c.metric for c in spec.comparisons})

    def columns(self) -> dict[str, str]:
        """{compared metric: the trial metric holding it}."""
        return {m: OBJECTIVES[m].column for m in self.metrics}

    def _values(self, trials: list[TrialInfo], metric: str, seeds: set) -> dict[Group, dict]:
        values: dict[Group, dict] = {}
        for trial in trials:
            seed = trial.params.get(SEED)
            value = trial.metrics.get(metric)
            if trial.state != "COMPLETE" or seed not in seeds or value is None:
                continue
            values.setdefault(group_of(trial.params), {})[seed] = float(value)
        return values

    def _pair(self, comparison: Comparison, trials, seeds) -> tuple[Group | None, Group | None]:
        if not comparison.best_vs_runner_up:
            return comparison.a, comparison.b
        values = self._values(trials, comparison.metric, seeds)
        sign = -1 if OBJECTIVES[comparison.metric].direction == "maximize" else 1
        ordered = sorted(
            (g for g in values if values[g]),
            key=lambda g: sign * sum(values[g].values()) / len(values[g]),
        )
        return (ordered[0], ordered[1]) if len(ordered) >= 2 else (None, None)

    def state(self, trials: list[TrialInfo], rounds: list[dict]) -> RaceState:
        """The race's looks, decisions and next round, from the trials and planned rounds."""
        rounds = sorted(rounds, key=lambda r: self.seeds.index(r["seed"]))
        open_trial = any(t.state in ("RUNNING", "WAITING") for t in trials)
        looks: list[list[ComparisonLook]] = []
        decided: dict[str, ComparisonLook] = {}
        samples: dict[str, list] = {c.name: [] for c in self.spec.comparisons}
        seeds = set(self.start_seeds)
        for look_index in range(len(rounds) + 1):
            if look_index:
                seeds.add(rounds[look_index - 1]["seed"])
            current = []
            for comparison in self.spec.comparisons:
                if comparison.name in decided:  # its verdict stands from the look it was decided
                    current.append(decided[comparison.name])
                    continue
                a, b = self._pair(comparison, trials, seeds)
                scale = OBJECTIVES[comparison.metric].scale or 1.0
                if a is None or b is None:
                    current.append(ComparisonLook(comparison, a, b, None, False, scale))
                    continue
                values = self._values(trials, comparison.metric, seeds)
                samples[comparison.name].append((values.get(a, {}), values.get(b, {})))
                look = sequential.race_looks(samples[comparison.name], self.max_seeds)[-1]
                entry = ComparisonLook(comparison, a, b, look, look.interval.sign() != 0, scale)
                if entry.decided:
                    decided[comparison.name] = entry
                current.append(entry)
            looks.append(current)
        in_play = sorted({g for c in looks[-1] if not c.decided for g in (c.a, c.b) if g})
        undecided = [c for c in looks[-1] if not c.decided]
        used = len(self.start_seeds) + len(rounds)
        capped = used >= self.max_seeds
        over = not undecided or capped
        next_round = None
        if not over and not open_trial and in_play:
            next_round = {"seed": self.seeds[used], "groups": [list(g) for g in in_play]}
        elif not over and not open_trial and not in_play:
            over = True  # nothing to give seeds to (e.g. no two groups finished)
        return RaceState(looks, rounds, next_round, over, self.max_seeds)


def round_lines(state: RaceState, counts: dict[Group, int]) -> list[str]:
    """The console's lines after a look: the round, seeds a group, each interval."""
    index = len(state.looks) - 1
    seeds = ", ".join(f"{shown(g)} {n}" for g, n in sorted(counts.items()))
    lines = [f"race round {index}: seeds a group: {seeds}"]
    lines += [f"  {c.line()}" for c in state.looks[-1]]
    if state.next_round is not None:
        groups = ", ".join(shown(_as_group(g)) for g in state.next_round["groups"])
        lines.append(f"  next: seed {state.next_round['seed']} for {groups}")
    return lines


def verdict_lines(state: RaceState) -> list[str]:
    """The race's end: each comparison's verdict, naming the sequential method."""
    rounds = len(state.looks) - 1
    lines = [
        f"race over after {rounds} round(s) (cap {state.max_seeds} seeds a group); "
        f"verdicts by {sequential.METHOD}:"
    ]
    for entry in state.looks[-1]:
        lines.append(f"  {entry.verdict()}: {entry.line().split(': ', 1)[1]}")
    return lines


def round_metrics(state: RaceState) -> dict[str, float]:
    """The last look's intervals as MLflow metrics (logged with step = the round)."""
    metrics: dict[str, float] = {}
    for entry in state.looks[-1]:
        record = entry.record()
        for key in ("difference", "low", "high"):
            if record[key] is not None:
                metrics[f"race.{slug(entry.comparison.name)}.{key}"] = record[key]
        metrics[f"race.{slug(entry.comparison.name)}.decided"] = float(entry.decided)
        metrics[f"race.{slug(entry.comparison.name)}.seeds"] = float(record["seeds"])
    groups = state.next_round["groups"] if state.next_round else []
    metrics["race.groups_given_a_seed"] = float(len(groups))
    return metrics
