"""The end of a study of several objectives: its Pareto front printed (each trial's objective
values and settings), marked on the MLflow runs (`pareto_optimal` on each trial's run, the front's
trial numbers on the study's run), and every Pareto-optimal trial's model registered as a version
of the study's registered model with alias `pareto-<n>` (n = 1.. by the first objective) and
`champion` on the first. The champion is also the newest version, so `models:/<study>/latest`
gives it too.
"""

from __future__ import annotations

from pathlib import Path

from experiments.analysis.pareto import CHAMPION_ALIAS, PARETO_ALIAS, front_aliases
from experiments.common import records as r


def front_lines(rows: list[dict], spec, numbers: list[int]) -> list[str]:
    """One line per Pareto-optimal trial: its alias, objective values and settings."""
    by_number = {row["number"]: row for row in rows}
    lines = []
    for rank, number in enumerate(numbers, start=1):
        row = by_number[number]
        values = ", ".join(f"{m} {row[f'values_{m}']:.4g}" for m in spec.metrics)
        settings = " ".join(
            f"{k.removeprefix('params_')}={v:.3g}" if isinstance(v, float) else
            f"{k.removeprefix('params_')}={v}"
            for k, v in row.items()
            if k.startswith("params_")
        )  # fmt: skip
        lines.append(f"  {PARETO_ALIAS.format(rank=rank)}: trial {number}: {values}; {settings}")
    return lines


def publish_front(spec, tracker, outcome, models_dir: Path, registered: str) -> Path:
    """Print, tag and register the study's Pareto front (`outcome.front`); returns the
    champion's model file (which may be absent: its trial ran on another machine)."""
    front = outcome.front
    numbers = [number for number, _ in front]
    complete = sum(row["state"] == "COMPLETE" for row in outcome.rows)
    print(
        f"Pareto front of {spec.describe_objectives()}: {len(front)} of {complete} finished "
        f"trial(s), by {spec.metric}:"
    )
    print("\n".join(front_lines(outcome.rows, spec, numbers)))
    tracker.mark_trial_runs(r.PARETO_TAG, {run_id for _, run_id in front if run_id})
    listed = ",".join(map(str, numbers))
    tracker.set_tags(tracker.parent_run_id, {r.PARETO_FRONT_TAG: listed})
    champion = models_dir / f"trial-{numbers[0]:03d}.keras"
    if tracker.study_run_tag(r.PARETO_MODELS_TAG) == listed:
        print(f"Pareto-optimal models already registered as models:/{registered}@pareto-<n>")
        return champion
    versions = register_front(tracker, front, models_dir, registered)
    if versions:
        set_front_aliases(tracker, registered, numbers, versions)
    if len(versions) == len(front):  # a rerun where the missing trials ran completes it
        tracker.set_tags(
            tracker.parent_run_id,
            {
                r.PARETO_MODELS_TAG: listed,
                r.BEST_MODEL_TRIAL_TAG: numbers[0],
                r.BEST_MODEL_URI_TAG: f"models:/{registered}@{CHAMPION_ALIAS}",
            },
        )
    if versions:
        print(
            f"Pareto-optimal models registered as models:/{registered}@pareto-1 .. "
            f"@pareto-{len(front)}; the champion, trial {numbers[0]} (best {spec.metric}): "
            f"models:/{registered}@{CHAMPION_ALIAS}, also models:/{registered}/latest"
        )
    return champion


def register_front(
    tracker, front: list[tuple[int, str | None]], models_dir: Path, registered: str
) -> dict[int, str]:
    """Register each front trial's model not registered yet; returns trial -> its version.
    The champion goes last, so that it is the newest version."""
    versions = {}
    for number, run_id in reversed(front):
        version = tracker.model_version(registered, run_id) if run_id else None
        path = models_dir / f"trial-{number:03d}.keras"
        if version is None and run_id and path.exists():
            tracker.register_model(run_id, path, registered)
            version = tracker.model_version(registered, run_id)
        if version is None:
            print(
                f"Pareto-optimal trial {number}: its model file is not on this machine ({path}); "
                "rerun this command where that trial ran to register it"
            )
            continue
        versions[number] = version
    return versions


def set_front_aliases(
    tracker, registered: str, numbers: list[int], versions: dict[int, str]
) -> None:
    """`pareto-<n>` and `champion` on the front's versions; the champion made the newest
    version (a copy of its own) where an earlier front left another newest; aliases of trials
    no longer on the front are removed."""
    wanted = {
        alias: versions[number]
        for alias, number in front_aliases(numbers).items()
        if number in versions
    }
    champion = wanted.get(CHAMPION_ALIAS)
    if champion is not None and tracker.model_version(registered, None) != champion:
        newest = tracker.copy_model_version(registered, champion)
        wanted = {alias: newest if v == champion else v for alias, v in wanted.items()}
    ours = PARETO_ALIAS.partition("{")[0]
    stale = {
        alias
        for alias in tracker.model_aliases(registered)
        if (alias.startswith(ours) or alias == CHAMPION_ALIAS) and alias not in wanted
    }
    tracker.set_model_aliases(registered, wanted, drop=stale)
