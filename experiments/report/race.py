"""A raced study's race as its run recorded it (`race.json`): the figure of each comparison's
interval over rounds, and its verdicts, for the optimizers and losses reports."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from colorize import stats
from experiments.report import figures
from experiments.report.stored_study import download_artifact

RACE_ARTIFACT = "race.json"  # as `experiments.engines.racing` logs it
# The names the study files give the comparisons the optimizers report's verdicts rest on
ADAMAX_VS_RMSPROP, BEST_VS_RUNNER_UP = "adamax vs rmsprop", "best vs runner-up"


def race_record(stored, folder: Path | None = None) -> dict | None:
    """The race the study's run recorded, or None for a study that did not race."""
    if folder is None:
        with tempfile.TemporaryDirectory() as scratch:
            return race_record(stored, Path(scratch))
    path = download_artifact(stored, stored.parent["run_id"], RACE_ARTIFACT, folder)
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def race_figures(stored, folder: Path) -> list[tuple[str, str, Path]]:
    """The narrowing-interval figure of a raced study (none for a study that did not race)."""
    race = race_record(stored, folder)
    if race is None:
        return []
    rounds = len(race["looks"]) - 1
    png = figures.race_intervals(folder / "race.png", race)
    return [
        (
            f"The race: each comparison's interval over {rounds} round(s)",
            "difference with its repeated 95 % interval after each round (kept at 95 % over all "
            "looks); filled: the look that decided it",
            png,
        )
    ]


def deciding_entry(race: dict, name: str) -> dict | None:
    """Comparison `name` at the look that decided it, else at its last look; None where the
    race never judged it."""
    entries = [c for look in race["looks"] for c in look if c["comparison"] == name]
    return next((c for c in entries if c["decided"]), entries[-1] if entries else None)


def race_sentences(stored) -> list[str]:
    """One sentence per raced comparison: the look that decided it, or its last."""
    race = race_record(stored)
    if race is None:
        return []
    sentences = []
    for name in [c["comparison"] for c in race["looks"][-1]]:
        entry = deciding_entry(race, name)
        if entry["difference"] is None:
            sentences.append(f"Raced: {name}: no two groups to compare.")
            continue
        word = "decided" if entry["decided"] else "inconclusive at the cap"
        interval = (
            f"{entry['difference']:+.4g} (95 % CI {entry['low']:+.4g} to {entry['high']:+.4g})"
            if entry["low"] is not None
            else f"{entry['difference']:+.4g}"
        )
        sentences.append(
            f"Raced: {name} ({entry['metric']}): {entry['a']} minus {entry['b']} {interval} at "
            f"{entry['seeds']} seeds, {word}; {entry['test']}."
        )
    return sentences


def raced_interval(stored, name: str, metric: str, race: dict | None = None) -> dict | None:
    """A raced comparison's verdict, for a finding the race judged: its repeated interval at the
    look that decided it (else its last), with the groups it compared (`a`, `b`). None where
    the study did not race, or raced no comparison `name` on `metric`: the finding keeps its
    own fixed-design interval. A raced study's data were gathered with looks after every
    round, so only the repeated interval keeps its 95 % over them: an ordinary interval on the
    same seeds would decide more often than it should."""
    race = race_record(stored) if race is None else race
    if race is None:
        return None
    entry = deciding_entry(race, name)
    if entry is None or entry["metric"] != metric or entry["difference"] is None:
        return None
    return {"interval": _interval(entry, race), "a": entry["a"], "b": entry["b"]}


def raced_between(stored, a: str, b: str, metric: str) -> stats.Interval | None:
    """The race's repeated interval of group `a` minus group `b` (as the race shows groups:
    "loss=mse") on `metric`, whichever way round the study named the comparison (`raced_interval`
    says why it stands for the finding). None where the study did not race that pair on it."""
    race = race_record(stored)
    if race is None:
        return None
    for name in dict.fromkeys(c["comparison"] for look in race["looks"] for c in look):
        entry = deciding_entry(race, name)
        if entry["metric"] != metric or entry["difference"] is None:
            continue
        if (entry["a"], entry["b"]) in ((a, b), (b, a)):
            interval = _interval(entry, race)
            return interval if entry["a"] == a else interval.flipped()
    return None


def _interval(entry: dict, race: dict) -> stats.Interval:
    def number(value) -> float:
        return math.nan if value is None else float(value)

    return stats.Interval(
        float(entry["difference"]),
        number(entry["low"]),
        number(entry["high"]),
        f"{entry['test']}, raced to {entry['seeds']} seeds; {race['method']}",
        enough=bool(entry["decided"]),  # undecided at the cap: inconclusive, whatever it shows
    )
