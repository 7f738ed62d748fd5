"""Orchestrates one study run: checks (test folder, dataset, fingerprint), the MLflow parent run,
the chosen engine, then the trials table, the best model and the test photos.

A study ends (table, best model) only when every trial has ended. If trials still run in other
workers that cannot be judged from here, it says which and where and exits with
`INCOMPLETE_EXIT`; rerunning the same command later finishes it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

from colorize.backend import collector_paused, import_keras_quietly
from experiments.analysis.ranking import group_bests
from experiments.common import records as r
from experiments.common.errors import INCOMPLETE_EXIT, UsageError
from experiments.common.heap import frozen_heap
from experiments.engines import Engine
from experiments.engines.factory import engine_type, make_engine
from experiments.engines.racing import raced
from experiments.settings import config as config_module
from experiments.settings import fingerprint as fingerprints
from experiments.settings.config import Profile, RunConfig, study_name
from experiments.settings.study_spec import StudySpec
from experiments.stores.store_urls import check_reachable, default_tracking_uri
from experiments.stores.workers import is_secondary, start_workers, stop_workers

log = logging.getLogger(__name__)


def keep_only_model(models_dir: Path, keep: set[int], settled: set[int]) -> None:
    """Delete saved models of settled trials other than those in `keep` (the best so far or
    the Pareto front so far, and the best of each group the study compares, which the registry
    names)."""
    for path in models_dir.glob("trial-*.keras"):
        number = int(path.stem.split("-")[1])
        if number not in keep and number in settled:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)


def _check_places(cfg: RunConfig, runs_dir: Path) -> None:
    """Refuse, before anything is written, a runs_dir that cannot be written and a tracking
    server that does not answer (MLflow would retry it for minutes)."""
    from colorize.folders import unwritable

    problem = unwritable(runs_dir)
    if problem:
        raise UsageError(f"runs_dir {cfg.runs_dir} cannot be written: {problem}")
    if cfg.tracking_uri:
        check_reachable(cfg.tracking_uri, "tracking_uri")


def _prepare(cfg: RunConfig, spec: StudySpec, profile: Profile, runs_dir: Path):
    """Every check that can refuse the run, before anything is written."""
    from experiments.tracking import Tracker
    from experiments.trials.data import StudyData, check_test_dir

    name = study_name(cfg)
    check_test_dir(cfg)
    dataset = StudyData(cfg)
    current = fingerprints.make_fingerprint(cfg, spec, profile.epoch_scale, dataset.key)
    environment = fingerprints.environment()
    engine: Engine = make_engine(cfg, spec, name, runs_dir)
    exists, stored, stored_environment = engine.stored_fingerprint()
    fingerprints.check(current, stored, name, engine.location, cfg.profile)
    current = current.adopting(stored)
    tracking_uri = cfg.tracking_uri or default_tracking_uri(runs_dir)
    tracker = Tracker(
        tracking_uri, name, runs_dir, cfg.engine, system_metrics=cfg.tracking.system_metrics
    )
    # e.g. a new Optuna storage beside an MLflow store of other settings
    recorded = tracker.stored_fingerprint(unless=current.hash)
    fingerprints.check(current, recorded, name, tracking_uri, cfg.profile)
    if exists and stored is None:
        print(f"note: study {name} was made before fingerprints: adopted with these settings")
    changes = fingerprints.environment_changes(stored_environment, environment)
    if changes:
        print(f"note: study {name} continues on another environment: {'; '.join(changes)}")
    return name, dataset, current, environment, engine, tracker


def load_libraries() -> None:
    """Keras (with its backend), MLflow and Optuna, imported at once with the cycle collector
    paused (`collector_paused`): seconds off the start of every study process and worker.

    Raises:
        BackendUnavailable: KERAS_BACKEND is unknown or its package is missing.
    """
    with collector_paused():
        import_keras_quietly(will_seed=True)
        import mlflow  # noqa: F401
        import optuna  # noqa: F401


def run(cfg: RunConfig, profile: Profile, spec: StudySpec, argv: list[str] | None = None) -> int:
    secondary = is_secondary()
    spec = raced(cfg, spec)  # a race's seeds reach its cap (and its fingerprint says so)
    runs_dir = Path(cfg.runs_dir).expanduser()
    _check_places(cfg, runs_dir)  # before the seconds Keras takes to load: a mistake is told now
    load_libraries()  # an unusable KERAS_BACKEND is reported before any work
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. under /proc, which says it is writable
        raise UsageError(
            f"runs_dir {cfg.runs_dir} cannot be written: {error.strerror or error}"
        ) from None
    name, dataset, current, environment, engine, tracker = _prepare(cfg, spec, profile, runs_dir)
    data, skipped = _load(dataset)
    engine.open(current, environment)
    try:
        tracker.start_study_run(engine.location, spec.name, current.hash)
        return _run_opened(cfg, profile, spec, argv, secondary, runs_dir, name, dataset, data,
                           skipped, current, environment, engine, tracker)  # fmt: skip
    except Exception:  # the command stops (exit 1): never leave the study's run RUNNING
        if not secondary and not tracker.server_gone():
            with contextlib.suppress(Exception):
                if tracker.client.get_run(tracker.parent_run_id).info.status == "RUNNING":
                    tracker.end_study_run("FAILED")
        raise
    finally:
        engine.close()


def _run_opened(cfg, profile, spec, argv, secondary, runs_dir, name, dataset, data, skipped,
                current, environment, engine, tracker) -> int:  # fmt: skip
    from experiments.trials.trial_runner import TrialRunner

    tracker.log_dataset(tracker.parent_run_id, dataset.record(data))
    engine.recover(tracker)
    total = spec.total_trials(profile, cfg.n_trials)
    _log_setup(cfg, spec, profile, tracker, engine, data, total, current, environment, skipped)
    models_dir = runs_dir / "models" / name / cfg.engine
    runner = TrialRunner(cfg, spec, profile, data, tracker, models_dir, current.hash)
    print(
        f"study {name} ({cfg.engine}, profile {profile.name}): {total} trials on {data.name} "
        f"({data.num_photos} photos, {len(data.train_l)} train / {len(data.val_l)} validation "
        f"images at {data.image_size}x{data.image_size})"
    )
    workers = []
    if cfg.workers > 1 and not secondary:
        workers = start_workers(argv or [], cfg.workers - 1, runs_dir / "logs" / name)
        print(f"started {len(workers)} more worker(s); their logs: {runs_dir / 'logs' / name}")
    with frozen_heap():
        outcome = _run_trials(engine, runner, total, workers, tracker if not secondary else None)
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.still_running:
        for line in outcome.still_running:
            print(f"unfinished: {line}", file=sys.stderr)
        print(
            f"study {name} is not finished: no table and no model until every trial has "
            "ended; rerun the same command when those workers have stopped",
            file=sys.stderr,
        )
        return INCOMPLETE_EXIT
    if secondary:
        return 0
    tracker.end_study_run("FINISHED")
    from experiments.flow.finish import finish

    finish(cfg, spec, name, tracker, outcome, models_dir, dataset)
    if outcome.race is not None:
        _end_race(outcome.race, outcome.rows, tracker)
    return 0


def _end_race(state, rows: list[dict], tracker) -> None:
    """The race's last look and verdicts on the console and the study's run."""
    from experiments.engines import racing

    counts: dict = {}
    for row in rows:
        if row["state"] == "COMPLETE":
            params = {
                k.removeprefix("params_"): v for k, v in row.items() if k.startswith("params_")
            }
            group = racing.group_of(params)
            counts[group] = counts.get(group, 0) + 1
    for line in [*racing.round_lines(state, counts), *racing.verdict_lines(state)]:
        print(line)
    step = len(state.looks) - 1
    tracker.log_metrics(tracker.parent_run_id, racing.round_metrics(state), step=step)
    tracker.log_dict(tracker.parent_run_id, state.record(), racing.RACE_ARTIFACT)


def _load(dataset) -> tuple:
    """The study's dataset, and how many photos it skipped (said on stderr where any)."""
    data = dataset.load()
    skipped = {
        key: len(data.skipped.get(key.removeprefix("skipped_"), [])) for key in r.SKIPPED_METRICS
    }
    if any(skipped.values()):
        print(
            f"data: skipped {skipped['skipped_grayscale']} grayscale and "
            f"{skipped['skipped_unreadable']} unreadable photo(s)",
            file=sys.stderr,
        )
    return data, skipped


def _run_trials(engine: Engine, runner, total: int, workers: list, tracker):
    """The engine's trials under a progress bar (other workers' trials count too), keeping only
    the best model file; stops the extra `workers` at the end, or at once where the study
    stops. Interrupted, the study's run (`tracker`, None in an extra worker) is closed as
    KILLED."""
    models_dir = runner.models_dir
    bar = tqdm(total=total, initial=min(total, engine.done()), desc="trials", unit="trial")

    def on_trial_end(done: int, leaders: list, settled: list[dict]) -> None:
        bar.total = max(bar.total, done)  # a race adds rounds of trials
        bar.n = done  # other workers' trials count too
        bar.refresh()
        keep = {number for number, _ in leaders}
        if not engine.spec.is_multi:
            keep |= set(group_bests(settled, engine.spec).values())
        keep_only_model(models_dir, keep, {row["number"] for row in settled})
        if len(leaders) == 1 and len(leaders[0][1]) == 1:
            number, (value,) = leaders[0]
            bar.set_postfix({"best": f"{value:.4f}", "trial": number})
        elif leaders:  # several objectives: the front so far
            bar.set_postfix({"pareto front": f"{len(leaders)} trial(s)"})

    try:
        outcome = engine.run(runner, total, on_trial_end)
        bar.close()
        stop_workers(workers, interrupted=False)
    except KeyboardInterrupt:
        bar.close()
        stop_workers(workers, interrupted=True)
        if tracker is not None:
            tracker.end_study_run("KILLED")
        raise
    except Exception:  # a fault the study cannot go on through: the workers stop too
        bar.close()
        stop_workers(workers, interrupted=True)
        raise
    return outcome


def _log_setup(cfg, spec, profile, tracker, engine, data, total, current, environment, skipped):
    from experiments.common.provenance import git_commit, host_tags, package_versions

    study_yaml = (config_module.STUDIES_DIR / f"{spec.name}.yaml").read_text()
    params = {
        "study": tracker.study,
        "definition": spec.name,
        "profile": profile.name,
        "engine": cfg.engine,
        "metric": spec.metric,  # the first objective
        "direction": spec.direction,
        "objectives": r.objectives_param([(o.metric, o.direction) for o in spec.objectives]),
        "sampler": spec.sampler,
        "pruner": spec.pruner,
        "storage": engine.location,
        "total_trials": total,
        "dataset": data.name,
        "dataset_photos": data.num_photos,
        "train_images": len(data.train_l),
        "val_images": len(data.val_l),
        "image_size": data.image_size,
        **skipped,
    }
    tags = host_tags() | {r.TOTAL_TRIALS_TAG: total, r.GIT_COMMIT_TAG: git_commit()}
    tags |= {f"{r.VERSION_TAG_PREFIX}{k}": v for k, v in package_versions().items()}
    tags[r.BACKEND_TAG] = environment["keras.backend"]
    texts = {
        r.STUDY_ARTIFACT: study_yaml,
        r.MANIFEST_ARTIFACT: {"photos": data.manifest},
        r.FINGERPRINT_ARTIFACT: current.values,
    }
    tracker.log_study_setup(config_module.to_yaml(cfg), params, tags, texts)
    tracker.log_metrics(tracker.parent_run_id, skipped)


def fingerprint_lines(cfg: RunConfig, spec: StudySpec, profile: Profile) -> list[str]:
    """What `--cfg` ends with: the fingerprint this run would be stored under, and whether the
    stored study matches it (read without creating anything).

    Raises:
        UsageError: the photos cannot be listed (the fingerprint covers their content).
    """
    from experiments.trials.data import StudyData

    name = study_name(cfg)
    dataset = StudyData(cfg)
    spec = raced(cfg, spec)
    current = fingerprints.make_fingerprint(cfg, spec, profile.epoch_scale, dataset.key)
    lines = [
        f"# fingerprint {current.hash}: every setting above that changes results (not "
        f"{', '.join(config_module.PLUMBING)}), the photos' content and the study's definition"
    ]
    runs_dir = Path(cfg.runs_dir).expanduser()
    engine_class = engine_type(cfg.engine)
    if not engine_class.may_hold(cfg, name, runs_dir):
        return [*lines, f"# stored study {name} ({cfg.engine}): none yet; a run starts it"]
    engine = engine_class(cfg, spec, name, runs_dir)
    exists, stored, _ = engine.stored_fingerprint()
    if not exists:
        verdict = "none yet; a run starts it"
    elif stored is None:
        verdict = "made before fingerprints; a run adopts it with these settings"
    elif current.differences(stored):
        verdict = f"differs ({'; '.join(current.differences(stored))}); a run is refused"
    else:
        adopted = current.adopting(stored)
        shown = "" if adopted.hash == current.hash else f" (stored as {adopted.hash})"
        verdict = f"matches{shown}; a run continues it"
    return [*lines, f"# stored study {name} in {engine.location}: {verdict}"]
