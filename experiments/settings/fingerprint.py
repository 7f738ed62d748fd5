"""A study's fingerprint: every setting that changes its results, so one study never mixes runs
of different settings.

The fingerprint is stored with the study (Optuna study attributes or the Keras Tuner project),
on the MLflow parent run and on every trial run and checkpoint. A rerun whose fingerprint differs
is refused before any training, naming each key that differs; `name=` runs it as a separate study.

What it covers comes from the configuration schema: every leaf that is not plumbing
(`experiments.settings.config.PLUMBING` lists those, each with the reason), the profile's epoch scale,
the photos' content and the study's definition. Values the study searches are covered by its
space, not by their defaults. A setting added since a study was stored counts as unchanged at
its default (every new setting defaults to the behaviour before it), so such a study is adopted
under its stored fingerprint. The Keras backend and package versions are recorded beside the
fingerprint: a change is reported, not refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from experiments.common.errors import UsageError
from experiments.common.provenance import package_versions
from experiments.settings.config import RESULT_KEYS, RunConfig, data_source, flat_values
from experiments.settings.study_spec import StudySpec

# Result settings fingerprinted as something other than their value.
DERIVED = {"data.source": data_source}  # `folder` where data.train_dir gives the photos
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
        """'key old -> new' for every key whose value differs from `stored` values; a setting
        the stored values lack (added since) differs only where it is not at its default."""
        defaults = _plain(flat_values(RunConfig()))
        keys = sorted(set(stored) | set(self.values))
        return [
            f"{key} {_show(stored.get(key))} -> {_show(self.values.get(key))}"
            for key in keys
            if _plain(stored.get(key)) != _plain(self.values.get(key))
            and not (key not in stored and defaults.get(key, object()) == self.values.get(key))
        ]

    def adopting(self, stored: dict[str, Any] | None) -> Fingerprint:
        """The fingerprint to run under: the stored one where it has no differences (a study
        stored before a setting existed keeps its hash, so its trials stay one study), else
        this one."""
        if stored is None or self.differences(stored):
            return self
        return Fingerprint(_plain(stored))


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
        "profile.epoch_scale": epoch_scale,
        "data.content": dataset_key[:16],
    }
    values |= {
        key: DERIVED[key](cfg) if key in DERIVED else flat[key]
        for key in RESULT_KEYS
        if key not in searched
    }
    values |= {
        "study.metric": spec.metric,
        "study.direction": spec.direction,
        "study.sampler": spec.sampler,
        "study.pruner": spec.pruner,
        "study.space": {name: param.describe() for name, param in spec.space.items()},
    }
    if spec.is_multi:  # absent for one objective, so studies stored before keep their hash
        values["study.objectives"] = [[o.metric, o.direction] for o in spec.objectives]
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
