"""The MLflow side of a real-or-colorized test: which models a study offers people (its champion
and the best of each group it compares), where its study run is, and the results written where
users look: on each model's run and on the study's run.

On each model's run: metrics `human.fool_rate` (with `human.fool_rate_low` / `_high`, its exact
95 % interval), `human.answers`, `human.fooled`, `human.participants`, and the table
`human/per_photo.json`. On the study's run: the same metrics per model
(`human.<model>.fool_rate`, ...), and the artifacts `human/summary.json` (protocol, verdicts,
comparisons: what the report reads), `human/models.csv`, `human/per_photo.csv`,
`human/answers.csv` (every answer as stored, participants by random id) and `human/pairs.png`.
Each write replaces the last, and metrics are logged with the number of answers as their step.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pandas as pd

from experiments.common import records as r
from experiments.common.errors import UsageError

CHAMPION = "champion"
SUMMARY_ARTIFACT = "human/summary.json"
_NOT_IN_KEY = re.compile(r"[^A-Za-z0-9_.-]+")


def metric_key(label: str) -> str:
    """A model label as part of an MLflow metric name."""
    return _NOT_IN_KEY.sub("_", label)


class HumanTestTracking:
    """Reads a study's registered models and study run; writes a test's results."""

    def __init__(self, tracking_uri: str):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)

    def study_run_id(self, study: str) -> str | None:
        """The study's run (its latest, of any engine), or None."""
        experiment = self.client.get_experiment_by_name(study)
        if experiment is None:
            return None
        runs = self.client.search_runs(
            [experiment.experiment_id], f"tags.`{r.ROLE_TAG}` = '{r.ROLE_STUDY}'"
        )
        latest = max(runs, key=lambda run: run.info.start_time or 0, default=None)
        return None if latest is None else latest.info.run_id

    def study_config(self, run_id: str) -> dict:
        """The resolved configuration the study stored (`config.yaml`)."""
        import mlflow
        import yaml

        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=r.CONFIG_ARTIFACT, dst_path=folder,
                tracking_uri=self.tracking_uri,
            )  # fmt: skip
            return yaml.safe_load(Path(path).read_text()) or {}

    def study_models(self, study: str) -> list[tuple[str, str]]:
        """(label, URI) of the study's champion and of the best of each group it compares, one
        entry per model version: a group's best that is the champion is named by its group."""
        try:
            registered = self.client.get_registered_model(study)
        except Exception:  # no such registered model
            raise UsageError(
                f"study {study!r} has no registered model in {self.tracking_uri}; run "
                f"`python -m experiments.run study={study}` first, or pass models=URI,..."
            ) from None
        aliases = dict(registered.aliases or {})
        by_version: dict[str, str] = {}
        for alias, version in sorted(aliases.items(), key=lambda item: item[0] == CHAMPION):
            if alias.startswith("pareto-"):
                continue
            by_version.setdefault(str(version), alias)
        if not by_version:
            raise UsageError(f"registered model {study!r} has no champion or group alias yet")
        labels = sorted(by_version.values(), key=lambda alias: (alias == CHAMPION, alias))
        return [(alias, f"models:/{study}@{alias}") for alias in labels]

    def run_of_model(self, uri: str) -> str | None:
        """The run that logged the model at `uri` (`models:/name@alias`, `models:/name/N`,
        `models:/name/latest`, `runs:/<id>/...`), or None for a file."""
        if uri.startswith("runs:/"):
            return uri.removeprefix("runs:/").split("/")[0]
        if not uri.startswith("models:/"):
            return None
        name, sep, alias = uri.removeprefix("models:/").partition("@")
        if sep:
            return self.client.get_model_version_by_alias(name, alias).run_id
        name, _, version = name.partition("/")
        if version == "latest":
            versions = self.client.search_model_versions(f"name = '{name}'")
            version = str(max(int(v.version) for v in versions))
        return self.client.get_model_version(name, version).run_id

    def publish(
        self,
        models: list[tuple[str, str]],
        model_rows: pd.DataFrame,
        photo_rows: pd.DataFrame,
        answers: pd.DataFrame,
        summary: dict,
        study_run: str | None,
        pairs_png: Path | None,
    ) -> list[str]:
        """Write the results; returns the runs written to."""
        step = len(answers)
        written = []
        for label, uri in models:
            run_id = self.run_of_model(uri)
            row = model_rows[model_rows["model"] == label]
            if run_id is None or row.empty:
                continue
            self._log_rate(run_id, "human", row.iloc[0], step)
            mine = photo_rows[photo_rows["model"] == label]
            self.client.log_table(run_id, mine.reset_index(drop=True), "human/per_photo.json")
            written.append(run_id)
        if study_run is not None:
            for _, row in model_rows[model_rows["verdict"] != "not counted"].iterrows():
                self._log_rate(study_run, f"human.{metric_key(row['model'])}", row, step)
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder) / "human"
                out.mkdir()
                (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
                model_rows.to_csv(out / "models.csv", index=False)
                photo_rows.to_csv(out / "per_photo.csv", index=False)
                answers.to_csv(out / "answers.csv", index=False)
                if pairs_png is not None and pairs_png.exists():
                    (out / "pairs.png").write_bytes(pairs_png.read_bytes())
                self.client.log_artifacts(study_run, str(out), "human")
            written.append(study_run)
        return written

    def _log_rate(self, run_id: str, prefix: str, row: pd.Series, step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = {
            "fool_rate": row["fool_rate"], "fool_rate_low": row["ci_low"],
            "fool_rate_high": row["ci_high"], "answers": row["answers"],
            "fooled": row["fooled"], "participants": row["participants"],
        }  # fmt: skip
        metrics = [
            Metric(f"{prefix}.{key}", float(value), now, step)
            for key, value in values.items()
            if pd.notna(value)
        ]
        self.client.log_batch(run_id, metrics=metrics)
