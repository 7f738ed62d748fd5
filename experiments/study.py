"""Orchestrates one study run: data, MLflow parent run, the chosen engine, the best model, the
trials table and (when data.test_dir is set) the colorized test photos."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from colorize.backend import import_keras_quietly
from colorize.cache import load_dataset_cached
from colorize.data import DataError
from experiments import config as config_module
from experiments.config import Profile, RunConfig
from experiments.errors import UsageError
from experiments.space import StudySpec

log = logging.getLogger(__name__)


def load_data(cfg: RunConfig):
    """The study's dataset, converted to LAB once and memory-mapped from `<runs_dir>/cache`."""
    try:
        return load_dataset_cached(
            Path(cfg.runs_dir).expanduser() / "cache",
            cfg.data.train_dir,
            cfg.data.image_size,
            val_fraction=cfg.data.val_fraction,
            crops_per_photo=cfg.data.crops_per_photo,
            val_photos=cfg.data.val_photos,
            seed=cfg.data.split_seed,
        )
    except DataError as error:
        raise UsageError(str(error)) from None


def keep_only_model(models_dir: Path, keep: int | None, settled: set[int]) -> None:
    """Delete saved models of settled trials other than `keep` (the best so far)."""
    for path in models_dir.glob("trial-*.keras"):
        number = int(path.stem.split("-")[1])
        if number != keep and number in settled:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)


def ui_command(cfg: RunConfig, tracking_uri: str) -> str:
    if cfg.tracking_uri:
        return f"open {cfg.tracking_uri} in a browser"
    return (
        f"mlflow ui --backend-store-uri {shlex.quote(tracking_uri)} --host 127.0.0.1 --port 5000"
    )


WORKER_ENV = "COLORIZE_SECONDARY_WORKER"  # set for the extra processes `workers=N` starts


def start_workers(argv: list[str], count: int, logs_dir: Path) -> list[subprocess.Popen]:
    """Start `count` more processes of the same command (workers=1) on the same study."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    args = [a for a in argv if not a.startswith("workers=")] + ["workers=1"]
    env = {**os.environ, WORKER_ENV: "1"}
    processes = []
    for index in range(1, count + 1):
        log_file = open(logs_dir / f"worker-{index}.log", "w")  # noqa: SIM115  (child's output)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "experiments.run", *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    return processes


def stop_workers(processes: list[subprocess.Popen], interrupted: bool) -> None:
    for process in processes:
        if interrupted and process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait()


def run(cfg: RunConfig, profile: Profile, spec: StudySpec, argv: list[str] | None = None) -> int:
    secondary = os.environ.get(WORKER_ENV) == "1"
    if cfg.workers > 1 and cfg.tuner != "optuna":
        raise UsageError("workers>1 needs tuner=optuna (Keras Tuner runs one process)")
    import_keras_quietly(will_seed=True)  # an unusable KERAS_BACKEND is reported before any work
    runs_dir = Path(cfg.runs_dir).expanduser()
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(cfg)
    if data.skipped.get("unreadable") or data.skipped.get("grayscale"):
        print(
            f"data: skipped {len(data.skipped.get('grayscale', []))} grayscale and "
            f"{len(data.skipped.get('unreadable', []))} unreadable photo(s)",
            file=sys.stderr,
        )
    from experiments.objective import TrialRunner
    from experiments.stores import default_storage, default_tracking_uri
    from experiments.tracking import Tracker

    tracking_uri = cfg.tracking_uri or default_tracking_uri(runs_dir)
    storage_url = cfg.storage or default_storage(runs_dir)
    engine = cfg.tuner
    total = spec.total_trials(profile, cfg.n_trials)
    tracker = Tracker(tracking_uri, spec.name, runs_dir)
    models_dir = runs_dir / "models" / spec.name / engine
    runner = TrialRunner(cfg, spec, profile, data, tracker, engine, models_dir)

    study = None
    if engine == "optuna":
        from experiments.engine_optuna import open_study

        study = open_study(storage_url, spec, heartbeat=cfg.heartbeat)
    tracker.start_study_run(
        storage_url if engine == "optuna" else str(runs_dir / "keras_tuner"), engine
    )
    if study is not None:
        from experiments.engine_optuna import recover

        recover(study, tracker.close_if_running)
    study_yaml = (config_module.STUDIES_DIR / f"{spec.name}.yaml").read_text()
    tracker.log_study_setup(
        config_module.to_yaml(cfg),
        {
            "study": spec.name,
            "profile": profile.name,
            "engine": engine,
            "metric": spec.metric,
            "direction": spec.direction,
            "sampler": spec.sampler,
            "pruner": spec.pruner,
            "storage": storage_url if engine == "optuna" else "keras_tuner project",
            "total_trials": total,
            "dataset": data.name,
            "dataset_photos": data.num_photos,
            "train_images": len(data.train_l),
            "val_images": len(data.val_l),
            "image_size": data.image_size,
            "skipped_grayscale": len(data.skipped.get("grayscale", [])),
            "skipped_unreadable": len(data.skipped.get("unreadable", [])),
        },
        data.manifest,
        study_yaml,
    )
    tracker.log_metrics(
        tracker.parent_run_id,
        {
            "skipped_grayscale": len(data.skipped.get("grayscale", [])),
            "skipped_unreadable": len(data.skipped.get("unreadable", [])),
        },
    )
    print(
        f"study {spec.name} ({engine}, profile {profile.name}): {total} trials on {data.name} "
        f"({data.num_photos} photos, {len(data.train_l)} train / {len(data.val_l)} validation "
        f"images at {data.image_size}x{data.image_size})"
    )
    status = "FAILED"
    workers = []
    if cfg.workers > 1 and not secondary:
        workers = start_workers(argv or [], cfg.workers - 1, runs_dir / "logs" / spec.name)
        print(
            f"started {len(workers)} more worker(s); their logs: {runs_dir / 'logs' / spec.name}"
        )
    try:
        if engine == "optuna":
            rows, best = _run_optuna(study, spec, runner, total, models_dir)
        else:
            rows, best = _run_keras_tuner(cfg, spec, runner, total, runs_dir, models_dir)
        stop_workers(workers, interrupted=False)
        if workers:
            rows, best = _optuna_rows(study)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        stop_workers(workers, interrupted=True)
        raise
    finally:
        if not secondary:
            tracker.end_study_run(status)
    if secondary:
        return 0
    table = pd.DataFrame(rows)
    csv_path = runs_dir / f"{spec.name}-{engine}-trials.csv"
    table.to_csv(csv_path, index=False)
    tracker.client.log_artifact(tracker.parent_run_id, str(csv_path))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False) if len(table) else "no trials")
    print(f"trials table: {csv_path}")
    if best is not None:
        _publish_best(cfg, spec, tracker, engine, best, models_dir)
    print(f"browse the runs: {ui_command(cfg, tracking_uri)}")
    return 0


def _progress(total: int, done: int) -> tqdm:
    return tqdm(total=total, initial=done, desc="trials", unit="trial", dynamic_ncols=True)


def _run_optuna(study, spec: StudySpec, runner, total: int, models_dir: Path):
    from experiments.engine_optuna import run_study, settled_trials

    bar = _progress(total, len(settled_trials(study)))

    def on_trial_end(trial) -> None:
        settled = settled_trials(study)
        bar.n = min(total, len(settled))  # other workers' trials count too
        bar.refresh()
        complete = [t for t in settled if t.state.name == "COMPLETE"]
        best = min(
            complete,
            key=lambda t: t.value if spec.direction == "minimize" else -t.value,
            default=None,
        )
        keep_only_model(models_dir, best.number if best else None, {t.number for t in settled})
        if best is not None:
            bar.set_postfix({"best": f"{best.value:.4f}", "trial": best.number})

    try:
        run_study(study, spec, runner, total, on_trial_end)
    finally:
        bar.close()
    return _optuna_rows(study)


def _optuna_rows(study) -> tuple[list[dict], tuple[int, str] | None]:
    """The study's trials as table rows, and (number, MLflow run id) of the best trial."""
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            **{f"params_{k}": v for k, v in t.params.items()},
            "best_epoch": t.user_attrs.get("best_epoch"),
            "early_stopped": t.user_attrs.get("early_stopped"),
            "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
            "fail_reason": t.user_attrs.get("fail_reason", ""),
        }
        for t in study.get_trials(deepcopy=False)
        if not t.user_attrs.get("surplus")
    ]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    best_ref = (best.number, best.user_attrs.get("mlflow_run_id")) if best else None
    return rows, best_ref


def _run_keras_tuner(
    cfg: RunConfig, spec: StudySpec, runner, total: int, runs_dir: Path, models_dir: Path
):
    from experiments.engine_keras_tuner import run_study, trial_rows

    project_dir = runs_dir / "keras_tuner" / spec.name
    done = len(list(project_dir.glob("trial_*/trial.json")))
    bar = _progress(total, min(done, total))

    def on_trial_end(trial_id: str, state: str, value: float | None) -> None:
        bar.update(1)

    try:
        tuner = run_study(spec, runner, total, project_dir, cfg.trainer.epochs, on_trial_end)
    finally:
        bar.close()
    rows = trial_rows(tuner)
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    sign = 1 if spec.direction == "minimize" else -1
    best_row = min(complete, key=lambda r: sign * r["value"], default=None)
    keep_only_model(
        models_dir, best_row["number"] if best_row else None, {r["number"] for r in rows}
    )
    if best_row is None:
        return rows, None
    return rows, (
        best_row["number"],
        runner.tracker.trial_run_id(best_row["number"], "keras_tuner"),
    )


def _publish_best(cfg, spec, tracker, engine, best, models_dir: Path) -> None:
    from experiments.models import log_best_model

    number, run_id = best
    model_path = models_dir / f"trial-{number:03d}.keras"
    parent = tracker.client.get_run(tracker.parent_run_id)
    already = parent.data.tags.get("best_model.trial") == str(number)
    if not already and run_id and model_path.exists():
        uri = log_best_model(run_id, model_path, spec.name)
        tracker.set_tags(
            tracker.parent_run_id, {"best_model.trial": number, "best_model.uri": uri}
        )
        print(f"best trial {number}: model logged and registered as models:/{spec.name}/latest")
    elif already:
        print(f"best trial {number}: model already registered as models:/{spec.name}/latest")
    else:
        print(
            f"best trial {number}: its model file is not on this machine ({model_path}); rerun "
            "this command where that trial ran to log and register it"
        )
    if cfg.data.test_dir and model_path.exists():
        from colorize.__main__ import main as colorize_main

        out = Path("results") / spec.name
        code = colorize_main(
            ["--model", str(model_path), "--input", cfg.data.test_dir, "--output", str(out)]
        )
        if code:
            raise UsageError(f"data.test_dir {cfg.data.test_dir}: nothing colorized")
