"""A study's fingerprint: every setting that changes its results, so one study never mixes runs
of different settings.

The fingerprint is stored with the study (Optuna study attributes or the Keras Tuner project),
on the MLflow parent run and on every trial run and checkpoint. A rerun whose fingerprint differs
is refused before any training, naming each key that differs; `name=` runs it as a separate study.

Budgets and plumbing are left out (`n_trials`, workers, heartbeat, progress, storage and tracking
URIs, checkpoint interval, test folder): a larger `n_trials` extends the same study. Values the
study searches are covered by its space, not by their defaults. The Keras backend and package
versions are recorded beside the fingerprint: a change is reported, not refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from experiments.config import RunConfig, data_source, flat_values
from experiments.errors import UsageError
from experiments.provenance import package_versions
from experiments.space import StudySpec

# Settings of the run configuration that change results (searched ones are dropped per study).
RESULT_KEYS = (
    "data.image_size",
    "data.crops_per_photo",
    "data.val_photos",
    "data.val_fraction",
    "data.split_seed",
    "data.l_scaling",
    "model.architecture",
    "model.kernel_size",
    "model.padding",
    "model.strides",
    "trainer.optimizer",
    "trainer.learning_rate",
    "trainer.batch_size",
    "trainer.epochs",
    "trainer.patience",
    "trainer.seed",
    "trainer.mixed_precision",
)
ENVIRONMENT_PACKAGES = ("keras", "tensorflow", "jax", "torch", "numpy")  # change results a little


def _plain(value: Any) -> Any:
    """A JSON-stable form (tuples as lists, floats as written)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@dataclass(frozen=True)
class Fingerprint:
    """The result-changing settings of a study run, and a short hash of them."""

    values: dict[str, Any]

    @property
    def hash(self) -> str:
        blob = json.dumps(self.values, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """'key old -> new' for every key whose value differs from `stored` values."""
        keys = sorted(set(stored) | set(self.values))
        return [
            f"{key} {_show(stored.get(key))} -> {_show(self.values.get(key))}"
            for key in keys
            if _plain(stored.get(key)) != _plain(self.values.get(key))
        ]


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def make_fingerprint(
    cfg: RunConfig, spec: StudySpec, epoch_scale: float, dataset_key: str
) -> Fingerprint:
    """The fingerprint of running `spec` with `cfg` on the dataset whose content key is given."""
    flat = flat_values(cfg)
    searched = {param.key for param in spec.space.values()}
    values: dict[str, Any] = {
        "profile": cfg.profile,
        "profile.epoch_scale": epoch_scale,
        "data.source": data_source(cfg),
        "data.content": dataset_key[:16],
    }
    values |= {key: flat[key] for key in RESULT_KEYS if key not in searched}
    values |= {
        "study.metric": spec.metric,
        "study.direction": spec.direction,
        "study.sampler": spec.sampler,
        "study.pruner": spec.pruner,
        "study.space": {name: param.describe() for name, param in spec.space.items()},
    }
    return Fingerprint(_plain(values))


def environment() -> dict[str, str]:
    """The Keras backend and package versions: recorded beside the fingerprint, not part of it."""
    import keras

    return {"keras.backend": keras.backend.backend(), **package_versions(ENVIRONMENT_PACKAGES)}


def check(
    current: Fingerprint, stored: dict[str, Any] | None, study: str, where: str, profile: str
) -> None:
    """Refuse to continue a study whose stored fingerprint differs from `current`.

    Raises:
        UsageError: one line naming each differing key (old -> new) and how to run the new
            settings as a separate study.
    """
    if stored is None:
        return
    changed = current.differences(stored)
    if not changed:
        return
    suggestion = f"{study}-{profile}" if stored.get("profile") != profile else f"{study}-2"
    raise UsageError(
        f"study {study!r} in {where} was run with other settings: {'; '.join(changed)}. "
        f"Rerun with its settings, or run these as a separate study with name={suggestion}"
    )


def environment_changes(stored: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """'keras.backend tensorflow -> jax' for each recorded package or backend that changed."""
    if not stored:
        return []
    return [
        f"{key} {stored[key]} -> {current.get(key, '(none)')}"
        for key in sorted(stored)
        if stored[key] != current.get(key, "(none)")
    ]
