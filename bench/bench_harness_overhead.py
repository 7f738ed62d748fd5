"""Benchmark: what the study harness costs per epoch, against a bare `model.fit`.

    python bench/bench_harness_overhead.py [--image-size 64] [--epochs 5] [--repeats 3]

Both sides train the paper's network (kernel 3, same padding, strides 2) on the same arrays,
memory-mapped from the dataset cache (the embedded photos at `--image-size`, about 100 training
crops, loaded by `experiments.trials.data.StudyData` as a study does), with the same optimizer, batch
size and seed, in one process, alternating:

- trial: `experiments.trials.trial_runner.TrialRunner.run` through the Optuna engine
  (`experiments.settings.engine_registry.make_engine`, opened, recovered and run as `experiments.flow.study` drives
  it), i.e. a real Optuna trial in SQLite storage with heartbeats and the Keras pruning callback
  (a median pruner that never prunes here), a real `Tracker` on a temporary MLflow SQLite store
  (per-epoch metrics and the progress line), the per-epoch checkpoint, early stopping, then the
  trial's metrics, figures and saved model. The study is a grid of one point a round that
  differs only in `trainer.seed` (round k: seed k-1), since the engine does not run values that
  already ran;
- bare: `model.fit` of `colorize.train.compact_input_model` on `colorize.batches.LabBatches`
  of the same arrays (int8 targets a, b and the accuracy label), no callbacks, with that seed.

An epoch's time is the interval between two `on_epoch_begin` calls, so it includes every
callback's end-of-epoch work; epoch 1 (graph tracing) and the last epoch are left out, and the
ratio is the median trial epoch over the median bare epoch of the same round, over `--repeats`
rounds (target <= 1.10x). One-off costs are reported apart: configuration, loading the cached
dataset, the tracker and study, and a trial's start (MLflow run, model build) and end (metrics,
figures, model save). Where the per-epoch time goes is measured by timing the harness's own
per-epoch callbacks (MLflow logging, pruning report, checkpoint save) where they run.
Checkpoints follow `trainer.checkpoint_every` (`--checkpoint-every 0`: one every epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from colorize.backend import import_keras_quietly  # noqa: E402

import_keras_quietly(will_seed=True)

import keras  # noqa: E402

SPENT: dict[str, list[float]] = defaultdict(list)  # callback name -> seconds per call


class EpochClock(keras.callbacks.Callback):
    """Wall-clock times of every on_epoch_begin and of on_train_begin/end."""

    def __init__(self):
        super().__init__()
        self.begins: list[float] = []
        self.train_begin = self.train_end = 0.0

    def on_train_begin(self, logs=None):
        self.train_begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.begins.append(time.perf_counter())

    def on_train_end(self, logs=None):
        self.train_end = time.perf_counter()

    def steady_epochs(self) -> list[float]:
        """Durations of epochs 2 .. n-1 (begin to next begin)."""
        return [b - a for a, b in zip(self.begins[1:-1], self.begins[2:], strict=True)]


def timed_method(owner, name: str, label: str) -> None:
    """Wrap `owner.name` so each call's duration is recorded under `label`."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[label].append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def instrument() -> None:
    """Time the harness's per-epoch work where it runs (behaviour unchanged)."""
    import optuna_integration

    from colorize import checkpoint, train
    from experiments.trials import trial_runner

    timed_method(checkpoint, "save", "checkpoint save")
    timed_method(trial_runner.EpochRecorder, "on_epoch_end", "MLflow epoch log + line")
    timed_method(optuna_integration.KerasPruningCallback, "on_epoch_end", "Optuna report/prune")
    timed_method(keras.callbacks.EarlyStopping, "on_epoch_end", "early stopping")
    timed_method(train.LearningRateLogger, "on_epoch_end", "learning-rate logger")


def bare_fit(data, image_size: int, epochs: int, batch_size: int, seed: int) -> dict:
    from colorize.batches import LabBatches, even_batch_size
    from colorize.model import build_model
    from colorize.train import compact_input_model, compile_model

    started = time.perf_counter()
    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model(kernel_size=3, padding="same", strides=2, image_size=image_size)
    model = compact_input_model(model)
    compile_model(model, "adamax", 1e-3)
    train = LabBatches(data.train_l, data.train_target, batch_size, shuffle=True, seed=seed)
    val_size = even_batch_size(len(data.val_l), batch_size)  # as `colorize.train.train` does
    val = LabBatches(data.val_l, data.val_target, val_size)
    clock = EpochClock()
    model.fit(train, validation_data=val, epochs=epochs, callbacks=[clock], verbose=0)
    ended = time.perf_counter()
    return {
        "epochs": clock.steady_epochs(),
        "start": clock.begins[0] - started,
        "first_epoch": clock.begins[1] - clock.begins[0],
        "end": ended - clock.train_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--crops-per-photo", type=int, default=12, help="training crops of each training photo"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        help="trainer.checkpoint_every in seconds (default: the config's; 0: every epoch)",
    )
    args = parser.parse_args()

    from experiments.settings import fingerprint as fingerprints
    from experiments.settings.config import compose, study_name
    from experiments.settings.engine_registry import make_engine
    from experiments.settings.study_spec import ParamSpec, load_study
    from experiments.stores.store_urls import default_tracking_uri
    from experiments.tracking import Tracker
    from experiments.trials.data import StudyData
    from experiments.trials.trial_runner import TrialRunner

    instrument()
    once: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        runs_dir = Path(tmp) / "runs"
        started = time.perf_counter()

        def study_info(name: str):
            study = load_study(name)
            return study.fixed, study.searched_keys

        cfg, profile = compose(
            [
                "study=architecture",
                "profile=quick",
                f"runs_dir={runs_dir}",
                f"data.image_size={args.image_size}",
                f"data.crops_per_photo={args.crops_per_photo}",
                f"trainer.epochs={args.epochs}",
                f"trainer.patience={args.epochs}",
                f"trainer.batch_size={args.batch_size}",
                *(
                    [f"trainer.checkpoint_every={args.checkpoint_every}"]
                    if args.checkpoint_every is not None
                    else []
                ),
            ],
            study_info=study_info,
        )
        base = load_study("architecture").for_profile(profile, cfg.trainer.epochs)
        chosen = {"kernel_size": 3, "padding": "same", "strides": 2}
        # One grid point a round, differing only in the trainer's seed: the engine no longer
        # runs values that already ran, so asking the same point again would run nothing. At
        # least two points: Optuna's GridSampler fails at the end of the only trial of a
        # one-point grid whose trials were enqueued (no grid_id); a spare point never runs.
        seeds = list(range(max(2, args.repeats)))
        spec = dataclasses.replace(
            base,
            sampler={"type": "grid", "seed": 0},
            pruner={"type": "median", "n_startup_trials": 1000, "n_warmup_steps": 0},
            space={
                **{
                    name: dataclasses.replace(p, choices=[chosen[name]])
                    for name, p in base.space.items()
                },
                "seed": ParamSpec("seed", "trainer.seed", choices=seeds),
            },
        )
        once["config"] = time.perf_counter() - started

        started = time.perf_counter()  # the study's own loader: the cache under runs_dir
        data = StudyData(cfg).load()
        once["dataset build (first use)"] = time.perf_counter() - started
        started = time.perf_counter()
        dataset = StudyData(cfg)  # lists and keys the photos, as each study start does
        data = dataset.load()
        once["dataset load from cache"] = time.perf_counter() - started
        assert not data.built
        started = time.perf_counter()
        name = study_name(cfg)
        current = fingerprints.make_fingerprint(cfg, spec, profile.epoch_scale, dataset.key)
        engine = make_engine(cfg, spec, name, runs_dir)
        engine.open(current, fingerprints.environment())
        tracker = Tracker(
            default_tracking_uri(runs_dir), name, runs_dir, cfg.engine,
            system_metrics=cfg.tracking.system_metrics,
        )  # fmt: skip
        tracker.start_study_run(engine.location, spec.name, current.hash)
        engine.recover(tracker)
        once["tracker + study creation"] = time.perf_counter() - started
        print(
            f"{len(data.train_l)} train / {len(data.val_l)} val images at "
            f"{args.image_size}x{args.image_size}; paper network; {args.epochs} epochs a fit; "
            f"batch {args.batch_size}; checkpoint_every {cfg.trainer.checkpoint_every} s; "
            f"{os.cpu_count()} CPU(s)"
        )

        class TimedRunner(TrialRunner):
            """The project's runner, with a clock appended to the engine's callbacks."""

            last: dict = {}

            def run(self, number, params, extra_callbacks=None, **kwargs):
                clock = EpochClock()
                called = time.perf_counter()
                record = super().run(number, params, [*(extra_callbacks or []), clock], **kwargs)
                ended = time.perf_counter()
                TimedRunner.last = {
                    "seed": params["seed"],
                    "epochs": clock.steady_epochs(),
                    "start": clock.begins[0] - called,
                    "first_epoch": clock.begins[1] - clock.begins[0],
                    "end": ended - clock.train_end,
                }
                return record

        models_dir = runs_dir / "models" / name / cfg.engine
        runner = TimedRunner(cfg, spec, profile, data, tracker, models_dir, current.hash)
        rounds = []
        for repeat in range(args.repeats):
            seed = seeds[repeat]  # the grid's points run in order: this round's trial's seed
            bare = bare_fit(data, args.image_size, args.epochs, args.batch_size, seed)
            SPENT.clear()
            outcome = engine.run(runner, repeat + 1, lambda done, best, settled: None)
            trial = dict(TimedRunner.last)
            assert trial["seed"] == seed, (trial["seed"], seed)
            trial["spent"] = {k: statistics.mean(v) for k, v in SPENT.items()}
            trial["saves"] = len(SPENT.get("checkpoint save", []))
            ratio = statistics.median(trial["epochs"]) / statistics.median(bare["epochs"])
            rounds.append((bare, trial, ratio))
            print(
                f"  round {repeat + 1}: bare epoch {statistics.median(bare['epochs']):.2f} s, "
                f"trial epoch {statistics.median(trial['epochs']):.2f} s -> {ratio:.3f}x"
            )
        tracker.end_study_run("FINISHED")
        states = [row["state"] for row in outcome.rows if row["state"] != "WAITING"]  # spare
        assert states == ["COMPLETE"] * args.repeats, states

    ratios = [r[2] for r in rounds]
    bare_epoch = statistics.median(statistics.median(r[0]["epochs"]) for r in rounds)
    trial_epoch = statistics.median(statistics.median(r[1]["epochs"]) for r in rounds)
    print(f"\nsteady epoch, bare model.fit: {bare_epoch:.2f} s (median)")
    print(f"steady epoch, trial path:     {trial_epoch:.2f} s (median)")
    print(
        f"per-epoch ratio trial / bare: {statistics.median(ratios):.3f}x median of "
        f"{len(ratios)} rounds (range {min(ratios):.3f}-{max(ratios):.3f}; target <= 1.10x)"
    )
    print("per-epoch harness work (mean per call, timed where it runs):")
    labels = (
        "MLflow epoch log + line",
        "Optuna report/prune",
        "early stopping",
        "learning-rate logger",
        "checkpoint save",
    )
    for label in labels:
        values = [r[1]["spent"].get(label) for r in rounds if label in r[1]["spent"]]
        if values:
            share = statistics.median(values) / bare_epoch
            print(
                f"  {label:<23} {statistics.median(values) * 1000:7.1f} ms "
                f"({share:.1%} of a bare epoch)"
            )
    saves = [r[1]["saves"] for r in rounds]
    print(f"checkpoint saves per trial: {', '.join(map(str, saves))} ({args.epochs} epochs each)")
    print("one-off costs:")
    for label, seconds in once.items():
        print(f"  {label:<34} {seconds:6.2f} s")

    def median_of(side: int, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    print(
        f"  trial start (MLflow run, model build) {median_of(1, 'start'):6.2f} s "
        f"(bare: model build {median_of(0, 'start'):.2f} s)"
    )
    print(
        f"  first epoch (graph tracing)          {median_of(1, 'first_epoch'):6.2f} s "
        f"(bare {median_of(0, 'first_epoch'):.2f} s)"
    )
    print(
        f"  trial end (metrics, figures, save)   {median_of(1, 'end'):6.2f} s "
        f"(bare {median_of(0, 'end'):.2f} s)"
    )


if __name__ == "__main__":
    main()
