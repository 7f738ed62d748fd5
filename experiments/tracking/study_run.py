"""The study's parent run: found or made once (the oldest kept when two processes start at
once), its fingerprint, setup, dataset and end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Param

from experiments.common import records as r
from experiments.common.redact import mask_secrets
from experiments.tracking.values import TrackerState, shown


class StudyRunRecords(TrackerState):
    """The parent run of one study (one stored name, one engine); part of `Tracker`."""

    def find_study_run(self):
        """This study's parent run of this engine (the oldest, should two have been made at
        once), or None."""
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_STUDY}' and tags.`{r.ENGINE_TAG}` = '{self.engine}'"
            ),
        )
        return min(found, key=lambda run: (run.info.start_time, run.info.run_id), default=None)

    def start_study_run(self, location: str, definition: str, fingerprint: str) -> str:
        """Reopen this study's parent run, or create it. Two processes that start the study at
        the same moment may both create one: each looks again after creating, and the one
        whose run is not the oldest deletes its own and joins the oldest."""
        self.fingerprint, self.location = fingerprint, location
        existing = self.find_study_run()
        if existing is None:
            created = self._create_study_run(location, definition, fingerprint)
            existing = self.find_study_run()
            if existing is None or existing.info.run_id == created:
                self.parent_run_id = created
                return created
            self.client.delete_run(created)
        self.parent_run_id = existing.info.run_id
        self.client.update_run(self.parent_run_id, status="RUNNING")
        self.set_tags(self.parent_run_id, {r.FINGERPRINT_TAG: fingerprint})
        return self.parent_run_id

    def _create_study_run(self, location: str, definition: str, fingerprint: str) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study} ({self.engine})",
            tags={
                r.ROLE_TAG: r.ROLE_STUDY,
                r.STUDY_TAG: self.study,
                r.DEFINITION_TAG: definition,
                r.ENGINE_TAG: self.engine,
                r.FINGERPRINT_TAG: fingerprint,
                "optuna.storage": shown(location),
            },
        )
        return run.info.run_id

    def stored_fingerprint(self, unless: str) -> dict[str, Any] | None:
        """The fingerprint values this study's parent run was recorded with, or None where it
        has none or its hash is `unless` (the same settings: nothing to compare). A run whose
        fingerprint file is gone gives just its hash, so it still differs."""
        parent = self.find_study_run()
        recorded = parent.data.tags.get(r.FINGERPRINT_TAG) if parent else None
        if not recorded or recorded == unless:
            return None
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self.client.download_artifacts(
                    parent.info.run_id, r.FINGERPRINT_ARTIFACT, scratch
                )
                return json.loads(Path(path).read_text())
            except Exception:  # no artifact: say that it differs without the detail
                return {"fingerprint": recorded}

    def study_run_tag(self, key: str) -> str | None:
        """A tag of this study's parent run (as it is stored now)."""
        return self.client.get_run(self.parent_run_id).data.tags.get(key)

    def log_study_setup(
        self, config_yaml: str, params: dict[str, Any], tags: dict[str, Any], texts: dict
    ) -> None:
        """Params (first run only: params cannot change), tags of this (re)start and artifacts
        (`texts`: artifact path -> text or dict)."""
        run_id = self.parent_run_id
        self.set_tags(run_id, tags)
        existing = self.client.get_run(run_id).data.params
        new_params = {k: shown(v)[:6000] for k, v in params.items() if k not in existing}
        if new_params:
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in new_params.items()])
        self.client.log_text(run_id, mask_secrets(config_yaml), r.CONFIG_ARTIFACT)
        for path, content in texts.items():
            if isinstance(content, str):
                self.client.log_text(run_id, mask_secrets(content), path)
            else:
                self.log_dict(run_id, content, path)

    def log_dataset(self, run_id: str, dataset: dict[str, Any]) -> None:
        """The study's dataset as an MLflow dataset input of a run (the UI's Dataset column):
        name, source, digest (the content key, cut to MLflow's 36 characters) and its counts."""

        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(
            name=dataset["name"],
            digest=dataset["key"][: r.DATASET_DIGEST_CHARS],
            source_type=dataset["source"],
            source=json.dumps(dataset["location"]),
            profile=json.dumps(dataset["counts"]),
        )
        context = InputTag("mlflow.data.context", "training")
        self.client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[context])])
        self.dataset = dataset

    def end_study_run(self, status: str) -> None:
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status=status)
