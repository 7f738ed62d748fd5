"""The end of a finished study: the trials table, the best trial against the runner-up (or, with
several objectives, the Pareto front: `experiments.flow.pareto_finish`), the best model logged and
registered, the test photos colorized and (when they have colour) scored against gray, and the
command that opens the UI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.analysis.ranking import rank
from experiments.common import records as r
from experiments.common.errors import UsageError
from experiments.common.links import experiment_link, ui_base
from experiments.common.redact import masked_url
from experiments.flow.pareto_finish import publish_front
from experiments.registry.model_aliases import CHAMPION, group_aliases
from experiments.settings.config import RunConfig


def ui_command(cfg: RunConfig) -> str:
    """The command that opens the UI on this study's MLflow store."""
    if cfg.tracking_uri:
        shown = masked_url(cfg.tracking_uri)
        command = f"python -m experiments.ui tracking_uri={shown}"
        if shown != cfg.tracking_uri:  # PostgreSQL takes the password from PGPASSWORD
            command = f"PGPASSWORD=... {command}"
        return command
    return f"python -m experiments.ui runs_dir={cfg.runs_dir}"


def registered_name(study: str, engine: str) -> str:
    """Each engine registers its best model under its own name."""
    return study if engine == "optuna" else f"{study}-{engine.replace('_', '-')}"


def best_line(rows: list[dict], spec, raced: bool = False) -> str:
    """The best trial's settings against the runner-up's, over seeds (`experiments.analysis.ranking`).
    `raced`: the study raced its seeds, so the verdict is the race's repeated interval (printed
    with the race's verdicts); a fixed interval on seeds gathered with a look after every round
    would decide more often than its 95 % says, so none is given here."""
    found = rank(
        [
            {k.removeprefix("params_"): v for k, v in row.items() if k.startswith("params_")}
            | {"value": row["value"]}
            for row in rows
            if row["state"] == "COMPLETE"
        ],
        spec.direction,
    )
    if found is None:
        return ""

    def shown(settings: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in settings.items()) or "(one setting)"

    if raced and found.runner_up is not None:
        best, other = (sum(v) / len(v) for v in (found.best_values, found.runner_up_values))
        return (
            f"best {shown(found.best)}: {spec.metric} {best:.4g}; runner-up "
            f"{shown(found.runner_up)}: {other:.4g}; judged by the race (its verdicts follow)"
        )
    return found.sentence(spec.metric, shown)


def finish(cfg: RunConfig, spec, name: str, tracker, outcome, models_dir: Path, dataset) -> None:
    runs_dir = Path(cfg.runs_dir).expanduser()
    table = pd.DataFrame(outcome.rows)
    csv_path = runs_dir / f"{name}-{cfg.engine}-trials.csv"
    table.to_csv(csv_path, index=False)
    tracker.log_artifact(tracker.parent_run_id, csv_path)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False) if len(table) else "no trials")
    print(f"trials table: {csv_path}")
    if outcome.best is not None:
        registered = registered_name(name, cfg.engine)
        with tracker.publishing(registered):
            if spec.is_multi:  # the front's champion (best by the first objective) stands for it
                model_path = publish_front(spec, tracker, outcome, models_dir, registered)
            else:
                print(best_line(outcome.rows, spec, raced=outcome.race is not None))
                model_path = publish_best(cfg, name, tracker, outcome, spec, models_dir)
        if model_path.exists():
            test_photos(cfg, name, tracker, model_path, outcome.best[0], dataset)
    link = experiment_link(ui_base(tracker.tracking_uri), tracker.experiment_id)
    print(f"the study's runs in the MLflow UI: {link}")
    print(f"browse the runs: {ui_command(cfg)}")


def publish_best(cfg: RunConfig, name: str, tracker, outcome, spec, models_dir: Path) -> Path:
    """Register the best trial's model (alias `champion`, and `models:/<study>/latest`) and the
    best of each group the study compares (`<key>-<value>`, `experiments.registry.model_aliases`)."""
    number, run_id = outcome.best
    model_path = models_dir / f"trial-{number:03d}.keras"
    registered = registered_name(name, cfg.engine)
    if not (run_id and model_path.exists()):
        print(
            f"best trial {number}: its model file is not on this machine ({model_path}); rerun "
            "this command where that trial ran to log and register it"
        )
        return model_path
    groups = group_aliases(outcome.rows, spec)
    missing = []
    for alias, trial in groups.items():
        if trial != number and not _alias(tracker, cfg, registered, alias, trial, models_dir):
            missing.append(alias)
    newly = _alias(tracker, cfg, registered, CHAMPION, number, models_dir, latest=True)
    for alias, trial in groups.items():
        if trial == number:  # the champion's own groups: its version is registered now
            _alias(tracker, cfg, registered, alias, trial, models_dir)
    if newly:
        uri = f"models:/{registered}/{tracker.model_version(registered, run_id)}"
        tracker.set_tags(
            tracker.parent_run_id, {r.BEST_MODEL_TRIAL_TAG: number, r.BEST_MODEL_URI_TAG: uri}
        )
    done = "logged and registered" if newly == "new" else "already registered"
    print(f"best trial {number}: model {done} as models:/{registered}/latest and @{CHAMPION}")
    for alias, trial in groups.items():
        if alias not in missing:
            print(f"  best of {alias}: trial {trial}, models:/{registered}@{alias}")
    if missing:
        print(f"  not registered (model file not on this machine): {', '.join(missing)}")
    return model_path


def _alias(
    tracker,
    cfg,
    registered: str,
    alias: str,
    number: int,
    models_dir: Path,
    *,
    latest: bool = False,
) -> str:
    """Point `alias` at trial `number`'s model version, registering the model when no version
    holds it (or, with `latest`, when a later version would hide it from `latest`). Returns
    "new" when it registered, "kept" when the alias was already right, "" when the model file
    is not here."""
    run_id = tracker.trial_run_id(number, cfg.engine)
    version = tracker.model_version(registered, run_id) if run_id else None
    newest = tracker.model_version(registered, None)
    pointed = version is not None and tracker.alias_run_id(registered, alias) == run_id
    if pointed and (not latest or version == newest):
        return "kept"
    registered_now = version is None or (latest and version != newest)
    if registered_now:
        model_path = models_dir / f"trial-{number:03d}.keras"
        if not (run_id and model_path.exists()):
            return ""
        tracker.register_model(run_id, model_path, registered, latest=latest)
        version = tracker.model_version(registered, run_id)
    tracker.set_model_alias(registered, alias, version)
    return "new" if registered_now else "kept"


def test_photos(cfg: RunConfig, name: str, tracker, model_path: Path, number: int, dataset):
    """Colorize `data.test_dir` into `<runs_dir>/results/<study>`, and score the best model
    against gray on the colour test photos: the test folder's, or the fixed test set of the data
    source (the landscapes')."""
    from colorize.predict import load_model

    model, settings = load_model(model_path)
    photos, source = [], ""
    if cfg.data.test_dir:
        photos = colorize_test_dir(cfg, name, model, settings["l_scaling"])
        source = f"the test folder {cfg.data.test_dir}"
    elif dataset.spec.origin.test_set:  # a source with a fixed test set of its own
        from colorize.datasets import test_photos as fixed_test_photos

        refs = fixed_test_photos(dataset.spec)
        photos = [(ref.name.split(":", 1)[-1], ref.read()) for ref in refs]
        source = f"the {len(photos)} {dataset.spec.origin.test_set}"
    if not photos:
        return
    from colorize.evaluate import evaluate

    scores = evaluate(model, photos, settings["l_scaling"])
    if not scores.rows:
        print(f"test photos: none has colour, so none was scored against gray ({source})")
        return
    record = scores.to_dict() | {"source": source, "trial": number}
    tracker.log_dict(tracker.parent_run_id, record, r.GRAY_ARTIFACT)
    tracker.log_metrics(
        tracker.parent_run_id,
        {
            "test_delta_e2000_model": scores.mean("model")["delta_e2000"],
            "test_delta_e2000_gray": scores.mean("gray")["delta_e2000"],
        },
    )
    print(f"against gray on {source}: {scores.summary()}")


def colorize_test_dir(cfg: RunConfig, name: str, model, l_scaling: str) -> list:
    """Colorize `data.test_dir` into `<runs_dir>/results/<study>`; returns its photos as read
    (relative path, RGB), for scoring."""
    from colorize.folders import FolderError, colorize_folder, plan_outputs

    source = Path(cfg.data.test_dir)
    out = Path(cfg.runs_dir).expanduser() / "results" / name
    try:
        targets = plan_outputs(source, out)
    except FolderError as error:
        raise UsageError(f"data.test_dir: {error}") from None
    result = colorize_folder(model, targets, source, l_scaling, keep_photos=True)
    if not result.written:
        raise UsageError(f"data.test_dir {cfg.data.test_dir}: nothing colorized")
    print(f"colorized {result.written} test photo(s) into {out}")
    return result.photos
