"""Search engines behind one interface: each chooses trial values and keeps its own state, and
runs every trial through the shared `TrialRunner` (so the MLflow records are the same).

To add an engine, write a module here with an `Engine` subclass, list it in `factory.ENGINES`
and add its name to `experiments.settings.engine_registry` (the names `engine=` allows, read without
importing any engine). `factory.make_engine` builds the chosen one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from experiments.settings.config import RunConfig
    from experiments.settings.fingerprint import Fingerprint
    from experiments.settings.study_spec import StudySpec

from experiments.analysis.pareto import pareto_front
from experiments.analysis.ranking import best_of

# Called after each trial ends: (trials done, the leaders as (number, objective values): the best
# trial, or the Pareto front of a study of several objectives; the settled trials' rows).
TrialEnd = Callable[[int, list[tuple[int, tuple[float, ...]]], list[dict]], None]


@dataclass
class Outcome:
    """What a study run left: the trials table, the best trial, and what is still unfinished.

    Attributes:
        rows: one dict per trial (number, state, value, params_*, ...).
        best: (trial number, MLflow run id) of the best finished trial, or None; with several
            objectives, the first of the Pareto front (the best by the first objective).
        still_running: one sentence per trial still running elsewhere (not finished: the study
            is not complete while this is non-empty).
        notes: what the engine wants the user to know (e.g. an exhausted search space).
        front: with several objectives, (trial number, MLflow run id) of each Pareto-optimal
            trial, by the first objective; empty for one objective.
        race: a raced study's race as it ended (`experiments.racing.RaceState`), else None.
    """

    rows: list[dict]
    best: tuple[int, str | None] | None
    still_running: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    front: list[tuple[int, str | None]] = field(default_factory=list)
    race: Any = None


class Engine(ABC):
    """One study's search, stored where the engine keeps it."""

    name: str = ""

    def __init__(self, cfg: RunConfig, spec: StudySpec, study: str, runs_dir: Path):
        self.cfg, self.spec, self.study, self.runs_dir = cfg, spec, study, runs_dir

    @classmethod
    @abstractmethod
    def may_hold(cls, cfg: RunConfig, study: str, runs_dir: Path) -> bool:
        """Whether the store the engine would use may hold `study`, judged without creating
        anything (False only where the store is certainly absent)."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the engine keeps the study (a storage URL or a folder), for the records."""

    @abstractmethod
    def stored_fingerprint(self) -> tuple[bool, dict[str, Any] | None, dict | None]:
        """(the study exists, its fingerprint values or None for one made before fingerprints,
        its recorded environment), read without creating anything."""

    @abstractmethod
    def open(self, fingerprint: Fingerprint, environment: dict[str, str]) -> None:
        """Create or load the study, recording the fingerprint (adopting an older study)."""

    def close(self) -> None:  # noqa: B027 (most engines hold nothing)
        """Let go of what `open` holds for the run (a lock), however the run ends."""

    @abstractmethod
    def recover(self, tracker) -> None:
        """Settle what a killed or interrupted earlier run left behind, before any new trial:
        unfinished trials are queued again, and their MLflow runs (`tracker`) closed."""

    @abstractmethod
    def done(self) -> int:
        """Trials that count as done towards the total."""

    @abstractmethod
    def run(self, runner, total: int, on_trial_end: TrialEnd) -> Outcome:
        """Run trials until the study's total is reached (across restarts)."""


def value_columns(metrics: list[str]) -> list[str]:
    """The trials table's objective columns: `value` for one objective, else one
    `values_<metric>` each (as Optuna's `trials_dataframe` names them)."""
    return ["value"] if len(metrics) == 1 else [f"values_{metric}" for metric in metrics]


def leaders_of(rows: list[dict], spec: StudySpec) -> list[dict]:
    """The rows a study keeps: its best finished trial, or with several objectives every
    Pareto-optimal one, by the first objective."""
    if not spec.is_multi:
        best = best_of(rows, spec.direction)
        return [best] if best is not None else []
    columns = value_columns(spec.metrics)
    complete = {r["number"]: r for r in rows if r["state"] == "COMPLETE"}
    points = {n: [row.get(c) for c in columns] for n, row in complete.items()}
    return [complete[n] for n in pareto_front(points, spec.directions)]


def leader_values(rows: list[dict], spec: StudySpec) -> list[tuple[int, tuple[float, ...]]]:
    """`leaders_of` as (number, objective values) pairs, for `TrialEnd`."""
    columns = value_columns(spec.metrics)
    return [(r["number"], tuple(r[c] for c in columns)) for r in leaders_of(rows, spec)]
