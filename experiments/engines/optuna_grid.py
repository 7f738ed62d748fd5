"""A grid study's points, queued in its Optuna study once however many processes open it at the
same moment, and completed where a process was killed while queueing them."""

from __future__ import annotations

import itertools

import optuna

GRID_QUEUED_ATTR = "grid_enqueued"  # study attribute, set once every point is queued


def enqueue_grid(study: optuna.Study, grid: dict[str, list], lock) -> None:
    """Queue each point of `grid` that the study holds in no trial, then mark the grid queued,
    under `lock` (a context manager shared by every process on the storage). The mark comes
    after the points: a process killed between them leaves it unset, and the next one queues
    only the points missing."""
    if study.user_attrs.get(GRID_QUEUED_ATTR):
        return
    with lock:
        if study.user_attrs.get(GRID_QUEUED_ATTR):  # another process queued it meanwhile
            return
        names = list(grid)
        for values in itertools.product(*grid.values()):
            study.enqueue_trial(dict(zip(names, values, strict=True)), skip_if_exists=True)
        study.set_user_attr(GRID_QUEUED_ATTR, True)
