"""The study's best models in MLflow's registry: registering each once (under a lock two
processes take turns on), the one lookup of a version, and aliases."""

from __future__ import annotations

import contextlib
from pathlib import Path

import mlflow

from experiments.stores.store_locks import store_lock
from experiments.tracking.values import TrackerState


class ModelVersions(TrackerState):
    """The registered versions of a study's models; part of `Tracker`."""

    is_server: bool

    def publishing(self, registered: str):
        """A lock on registering `registered`'s versions and aliases: two processes finishing
        the study together take turns, so the second finds the first's versions and adds none.
        It is held in the MLflow store, or, where that is a server (which has no lock), in the
        study's own storage (`location`), which every host running the study shares. A lock
        that cannot be taken stops the registration (a one-line `UsageError`)."""
        where = self.location if self.is_server else self.tracking_uri
        return store_lock(where, f"publish.{registered}", required=True)

    def register_model(
        self, run_id: str, model_path: Path, registered: str, latest: bool = False
    ) -> str | None:
        """Log a trial's saved model on its run and register it; returns its version. Two
        processes finishing the study together may both register it: the one whose version is
        not the first of the pair deletes its own (`latest`: the run is being registered again
        to be the newest, so only versions after every other run's count as the pair)."""
        from experiments.registry.model_registry import log_best_model

        version = log_best_model(run_id, model_path, registered)
        return self._keep_first_version(registered, run_id, version, latest)

    def _keep_first_version(
        self, registered: str, run_id: str, version: str | None, latest: bool
    ) -> str | None:
        found = self.client.search_model_versions(f"name='{registered}'")
        newest_other = max((int(v.version) for v in found if v.run_id != run_id), default=0)
        mine = sorted(
            int(v.version)
            for v in found
            if v.run_id == run_id and (not latest or int(v.version) > newest_other)
        )
        if version is None or not mine or int(version) == mine[0]:
            return version
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # gone already
            self.client.delete_model_version(registered, version)
        return str(mine[0])

    def model_version(self, registered: str, run_id: str | None) -> str | None:
        """The newest version (as text) of registered model `registered` logged from run
        `run_id`, or from any run (None: the version `models:/<registered>/latest` resolves
        to); None where there is none. The one lookup of a version."""
        where = f"name='{registered}'" + (f" and run_id='{run_id}'" if run_id else "")
        try:
            found = self.client.search_model_versions(where)
        except Exception:  # no such registered model yet
            return None
        return max((str(v.version) for v in found), key=int, default=None)

    def alias_run_id(self, registered: str, alias: str) -> str | None:
        """The run whose model version carries `alias`; None where no version does."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(registered, alias).run_id
        except MlflowException:
            return None

    def set_model_alias(self, registered: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(registered, alias, version)

    def copy_model_version(self, registered: str, version: str) -> str:
        """A new version of `registered` holding the same model as `version` (no re-upload);
        returns its number."""
        found = self.client.get_model_version(registered, version)
        return str(
            self.client.create_model_version(
                registered, found.source, run_id=found.run_id, model_id=found.model_id
            ).version
        )

    def model_aliases(self, registered: str) -> dict[str, str]:
        """The aliases of registered model `registered`: alias -> version (as text)."""
        aliases = self.client.get_registered_model(registered).aliases
        return {alias: str(version) for alias, version in aliases.items()}

    def set_model_aliases(
        self, registered: str, aliases: dict[str, str], drop: set[str] = frozenset()
    ) -> None:
        """Point each alias at its version, and remove the aliases in `drop`."""
        for alias, version in aliases.items():
            self.client.set_registered_model_alias(registered, alias, version)
        for alias in drop:
            self.client.delete_registered_model_alias(registered, alias)
