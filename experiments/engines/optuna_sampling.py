"""The Optuna samplers and pruners a study names, and asking a trial for its values.

Sampler seeds differ per worker and per start but derive from the study's seed: the first
worker of a study's first start uses the seed as written (so a study stays reproducible), every
later start or extra worker a different one, so no two of them propose the same sequence.
"""

from __future__ import annotations

import hashlib
from typing import Any

from experiments.settings.study_spec import StudySpec


class RecordingSampler:
    """A sampler that records each trial's worker (`experiments.stores.liveness`) the moment the
    trial is created, then lets `inner` choose: a worker killed at any point after that is
    recognised as gone at once by the next run on its host."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):  # sampling itself is the inner sampler's
        return getattr(self.inner, name)

    def before_trial(self, study, trial) -> None:
        from experiments.stores.liveness import WORKER_ATTR, this_worker

        study._storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, this_worker())
        self.inner.before_trial(study, trial)


def worker_seed(study_seed: int | None, start: int) -> int | None:
    """The sampler seed of the `start`-th worker to join a study (0: the first)."""
    if study_seed is None or start == 0:
        return study_seed
    digest = hashlib.sha256(f"{study_seed}:{start}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def suggest(trial, spec: StudySpec) -> dict[str, Any]:
    """Ask an Optuna trial for one value per search-space entry."""
    values = {}
    for name, param in spec.space.items():
        if param.choices is not None:
            values[name] = trial.suggest_categorical(name, param.choices)
        elif param.is_int:
            values[name] = trial.suggest_int(name, param.low, param.high, step=param.step or 1)
        else:
            values[name] = trial.suggest_float(
                name, param.low, param.high, log=param.log, step=param.step
            )
    return values


def make_sampler(spec: StudySpec, start: int = 0):
    import optuna

    seed = worker_seed(spec.sampler.get("seed"), start)
    kind = spec.sampler["type"]
    if kind in ("grid", "random"):
        # A grid's points are queued once when its study is created, and trials take them from
        # the queue; Optuna's GridSampler would look for grid ids queued trials never get (and
        # fails on a one-point grid). A trial asked for past the queue is a surplus, not run.
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=spec.sampler["population_size"]
        )
    # TPE handles several objectives too (Optuna's MOTPE)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.sampler["n_startup_trials"])


def make_pruner(spec: StudySpec):
    import optuna

    options = {k: v for k, v in spec.pruner.items() if k != "type"}
    kind = spec.pruner["type"]
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(**options)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    return optuna.pruners.SuccessiveHalvingPruner(**options)
