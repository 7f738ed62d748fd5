"""The Pareto front of a multi-objective study: the finished trials no other finished trial beats
on every objective at once, in the order of the first objective (ties: the next objectives, then
the trial number). The study's end (console, MLflow tags, registered model aliases) and the report
both take the front from here, so they agree.

A trial dominates another when it is at least as good on every objective and better on one; two
trials with the same values are both on the front.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

PARETO_ALIAS = "pareto-{rank}"  # the front's n-th trial (1: best by the first objective)
CHAMPION_ALIAS = "champion"  # the front's first trial


def _signed(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    """Values turned so that lower is better on every objective."""
    return tuple(v if d == "minimize" else -v for v, d in zip(values, directions, strict=True))


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether values `a` beat `b`: no worse on any objective, better on one."""
    first, second = _signed(a, directions), _signed(b, directions)
    no_worse = all(x <= y for x, y in zip(first, second, strict=True))
    return no_worse and any(x < y for x, y in zip(first, second, strict=True))


def pareto_front(points: Mapping[int, Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The Pareto-optimal trial numbers of `points` (trial number -> objective values), ordered
    by the first objective. Points with a missing or non-finite value are left out."""
    usable = {
        number: tuple(float(v) for v in values)
        for number, values in points.items()
        if len(values) == len(directions)
        and all(v is not None and math.isfinite(float(v)) for v in values)
    }
    front = [
        number
        for number, values in usable.items()
        if not any(dominates(other, values, directions) for other in usable.values())
    ]
    return sorted(front, key=lambda n: (_signed(usable[n], directions), n))


def front_aliases(front: Sequence[int]) -> dict[str, int]:
    """The registered model's alias of each Pareto-optimal trial: `pareto-1`, `pareto-2`, ... in
    the front's order, and `champion` on the first."""
    aliases = {PARETO_ALIAS.format(rank=rank): n for rank, n in enumerate(front, start=1)}
    if front:
        aliases[CHAMPION_ALIAS] = front[0]
    return aliases
