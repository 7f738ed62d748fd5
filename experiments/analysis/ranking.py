"""Is the best setting really better than the runner-up? Trials are grouped by their settings
(seeds together), and the two best groups compared with a Welch 95 % t-interval over seeds:
`better` when it excludes no difference in the study's direction, `inconclusive` otherwise,
including with fewer than 3 seeds a group (a single draw says nothing about seed noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from colorize import stats

SEED = "seed"


@dataclass(frozen=True)
class Ranking:
    best: dict[str, Any]  # the settings of the best group
    best_values: list[float]
    runner_up: dict[str, Any] | None
    runner_up_values: list[float]
    interval: stats.Interval | None
    direction: str

    @property
    def word(self) -> str:
        if self.interval is None:
            return "inconclusive"
        better = self.interval.sign() == (-1 if self.direction == "minimize" else 1)
        return "better than the runner-up" if better else "inconclusive"

    def sentence(self, metric: str, show=lambda settings: str(settings)) -> str:
        """'... : within seed noise of the runner-up (inconclusive), ...'."""
        mean = sum(self.best_values) / len(self.best_values)
        head = f"best {show(self.best)}: {metric} {mean:.4g}"
        if self.runner_up is None:
            return f"{head}; no runner-up to compare with"
        other = sum(self.runner_up_values) / len(self.runner_up_values)
        versus = f"runner-up {show(self.runner_up)}: {other:.4g}"
        if self.word == "inconclusive":
            verdict = "within seed noise of the runner-up (inconclusive)"
        else:
            verdict = "better than the runner-up beyond seed noise"
        return f"{head}, {verdict}; {versus}; difference {self.interval.describe(digits=4)}"


def rank(rows: list[dict[str, Any]], direction: str) -> Ranking | None:
    """Rank finished trials, each a dict of settings (`seed` among them, if searched) plus
    `value`; None when there is none."""
    groups: dict[tuple, list[float]] = {}
    settings: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        value = row.get("value")
        if value is None or not math.isfinite(float(value)):
            continue
        chosen = {k: v for k, v in row.items() if k not in ("value", SEED)}
        key = tuple(sorted((k, repr(v)) for k, v in chosen.items()))
        groups.setdefault(key, []).append(float(value))
        settings[key] = chosen
    if not groups:
        return None
    sign = 1 if direction == "minimize" else -1
    ordered = sorted(groups, key=lambda key: sign * sum(groups[key]) / len(groups[key]))
    best = ordered[0]
    if len(ordered) == 1:
        return Ranking(settings[best], groups[best], None, [], None, direction)
    second = ordered[1]
    interval = stats.welch_interval(groups[best], groups[second], "seeds")
    return Ranking(
        settings[best], groups[best], settings[second], groups[second], interval, direction
    )


def best_of(rows: list[dict], direction: str) -> dict | None:
    """The finished row with the best value (ties: the lowest trial number)."""
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    sign = 1 if direction == "minimize" else -1
    return min(complete, key=lambda r: (sign * r["value"], r["number"]), default=None)


def group_bests(rows: list[dict], spec) -> dict[tuple[str, Any], int]:
    """{(setting, value): best trial number} over the finished `rows` (trials table rows), for
    every value of every setting the study chooses among (seeds aside) that at least two of
    its values reached. Settings searched over a range form no groups: each trial would be
    its own."""
    found: dict[tuple[str, Any], int] = {}
    for name, param in spec.space.items():
        if name == SEED or param.choices is None:
            continue
        column = f"params_{name}"
        values = [v for v in param.choices if any(row.get(column) == v for row in rows)]
        if len(values) < 2:
            continue
        for value in values:
            best = best_of([row for row in rows if row.get(column) == value], spec.direction)
            if best is not None:
                found[(name, value)] = int(best["number"])
    return found
