"""A raced study's race as its run recorded it (`race.json`): the figure of each comparison's
interval over rounds, and its verdicts, for the optimizers and losses reports."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from experiments.report import figures
from experiments.report.stored_study import download_artifact

RACE_ARTIFACT = "race.json"  # as `experiments.engines.racing` logs it


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


def race_sentences(stored) -> list[str]:
    """One sentence per raced comparison: the look that decided it, or its last."""
    race = race_record(stored)
    if race is None:
        return []
    final = {c["comparison"]: c for look in race["looks"] for c in look if c["decided"]}
    last = {c["comparison"]: c for c in race["looks"][-1]}
    sentences = []
    for name, entry in last.items():
        entry = final.get(name, entry)
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
