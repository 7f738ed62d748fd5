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
