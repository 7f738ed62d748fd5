"""Benchmark: epochs the `architecture` study spends with and without its pruner, and the best
configuration each finds.

    python bench/bench_pruning.py [--image-size 32] [--epochs 12] [--patience 5]
    python bench/bench_pruning.py --pruner '{"type": "successive_halving", "min_resource": 2}'
    python bench/bench_pruning.py --profile smoke --image-size 16 --epochs 3 --patience 3 \
        --crops-per-photo 2     # a check that it runs (a few minutes), not a measurement

Runs the study twice in this process with `experiments.flow.study.run` (real Optuna and MLflow
stores, each in its own runs_dir): once with the pruner of `studies/architecture.yaml` (or
`--pruner`), once with `pruner: {type: none}`. Epochs spent are counted from what is stored:
the number of `val_loss` steps of each trial's MLflow run (pruned trials included). The best
configuration is the COMPLETE trial with the lowest value in each Optuna study. `--profile`
picks the base profile (quick; smoke also trains eagerly, without tracing a graph); the options
override its data and trainer values.

Then, from the unpruned study's stored learning curves, it replays other pruner settings offline
(the same trials in the same order, each epoch's val_loss reported to an in-memory Optuna study
with that pruner) to show what each would spend and find, so the study's YAML can be tuned
without rerunning. The replay of the study's own pruner is checked against the real pruned run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Pruner settings replayed on the unpruned curves (besides the study's own and --pruner).
CANDIDATES = [
    {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 0},
    {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 2},
    {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 1},
    {"type": "successive_halving", "min_resource": 2, "reduction_factor": 3},
    {"type": "successive_halving", "min_resource": 3, "reduction_factor": 2},
    {"type": "hyperband", "min_resource": 2, "reduction_factor": 3},
]


def read_study(runs_dir: Path, name: str) -> list[dict]:
    """Each trial (by number) with its state, params, value and stored val_loss curve."""
    import optuna
    from mlflow.tracking import MlflowClient

    from experiments.common.records import RUN_ID_ATTR

    storage = f"sqlite:///{runs_dir.resolve() / 'optuna.db'}"
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    client = MlflowClient(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        curve = []
        if run_id:
            history = client.get_metric_history(run_id, "val_loss")
            curve = [m.value for m in sorted(history, key=lambda m: m.step)]
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "params": dict(trial.params),
                "value": trial.value,
                "curve": curve,
            }
        )
    return rows


def summary(rows: list[dict]) -> tuple[int, dict | None, float | None]:
    """Epochs spent, the best COMPLETE trial's params and value."""
    epochs = sum(len(r["curve"]) for r in rows)
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = min(complete, key=lambda r: r["value"], default=None)
    return epochs, (best["params"] if best else None), (best["value"] if best else None)


def replay(rows: list[dict], pruner_settings: dict) -> tuple[int, dict | None, float | None]:
    """What a pruner would have done on these curves: (epochs, best params, best value)."""
    import optuna

    from experiments.engines.optuna_sampling import make_pruner
    from experiments.settings.study_spec import StudySpec

    spec = StudySpec(
        "replay", "", "val_loss", "minimize", {"type": "random"}, pruner_settings, 0, {}
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the real study's name: Hyperband assigns brackets from a hash of it and the trial number
    study = optuna.create_study(
        study_name="architecture", direction="minimize", pruner=make_pruner(spec)
    )
    epochs, replayed = 0, []
    for row in rows:
        if not row["curve"]:
            continue  # a failed trial (infeasible): no epoch spent either way
        trial = study.ask()
        state, value = "COMPLETE", min(row["curve"])  # early stopping restores the best epoch
        for step, loss in enumerate(row["curve"]):
            trial.report(loss, step)
            epochs += 1
            if trial.should_prune():
                state = "PRUNED"
                break
        if state == "PRUNED":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        replayed.append({"state": state, "params": row["params"], "value": value})
    complete = [r for r in replayed if r["state"] == "COMPLETE"]
    best = min(complete, key=lambda r: r["value"], default=None)
    return epochs, (best["params"] if best else None), (best["value"] if best else None)


def run_study(runs_dir: Path, overrides: list[str], pruner: dict | None, quiet: bool) -> float:
    from experiments.flow import study as study_module
    from experiments.settings.config import compose
    from experiments.settings.study_spec import load_study

    def study_info(name: str):
        study = load_study(name)
        return study.fixed, study.searched_keys

    cfg, profile = compose(
        ["study=architecture", f"runs_dir={runs_dir}", *overrides], study_info=study_info
    )
    spec = load_study("architecture").for_profile(profile, cfg.trainer.epochs)
    if pruner is not None:
        spec = dataclasses.replace(spec, pruner=pruner)
    started = time.perf_counter()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        status = study_module.run(cfg, profile, spec)
    if status:
        raise SystemExit(f"the study in {runs_dir} ended with exit code {status}")
    return time.perf_counter() - started


def describe(params: dict | None) -> str:
    if not params:
        return "none"
    return ", ".join(f"{k}={params[k]}" for k in ("kernel_size", "padding", "strides"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", help="base profile (quick, smoke, ...)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--crops-per-photo", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pruner", type=json.loads, help="JSON; default: the study YAML's")
    parser.add_argument("--workdir", type=Path, help="keep both runs_dirs here")
    parser.add_argument(
        "--replay-only", action="store_true", help="report on the runs already in --workdir"
    )
    parser.add_argument(
        "--reuse-unpruned",
        action="store_true",
        help="keep the unpruned study already in --workdir (run only the pruned one)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the studies' output")
    args = parser.parse_args()

    from experiments.settings.study_spec import load_study

    overrides = [
        f"profile={args.profile}",
        f"data.image_size={args.image_size}",
        f"data.crops_per_photo={args.crops_per_photo}",
        f"trainer.epochs={args.epochs}",
        f"trainer.patience={args.patience}",
        f"trainer.batch_size={args.batch_size}",
    ]
    own_pruner = load_study("architecture").pruner
    pruner = args.pruner or own_pruner
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(
            f"architecture study: 12 grid trials, profile {args.profile}, "
            f"{args.image_size}x{args.image_size}, "
            f"{args.epochs} epochs, patience {args.patience}, batch {args.batch_size}, "
            f"crops_per_photo {args.crops_per_photo}; {os.cpu_count()} CPU(s)"
        )
        seconds_pruned = seconds_plain = float("nan")
        if not args.replay_only:
            seconds_pruned = run_study(workdir / "pruned", overrides, pruner, not args.verbose)
            if not (args.reuse_unpruned and (workdir / "unpruned" / "optuna.db").exists()):
                seconds_plain = run_study(
                    workdir / "unpruned", overrides, {"type": "none"}, not args.verbose
                )
        pruned = read_study(workdir / "pruned", "architecture")
        plain = read_study(workdir / "unpruned", "architecture")

    print(
        "\nkernel padding strides | unpruned: trial epochs  value   | pruned: trial state     epochs"
    )
    by_params = {describe(r["params"]): r for r in pruned}
    for a in plain:
        p, b = a["params"], by_params.get(describe(a["params"]), {})
        value = f"{a['value']:.5f}" if a["value"] is not None else a["state"]
        print(
            f"{p.get('kernel_size')!s:>6} {p.get('padding')!s:>7} {p.get('strides')!s:>7} | "
            f"{a['number']:>15} {len(a['curve']):>6}  {value:>8} | "
            f"{b.get('number', '-')!s:>13} {b.get('state', '-'):<9} {len(b.get('curve', [])):>6}"
        )
    plain_epochs, plain_best, plain_value = summary(plain)
    pruned_epochs, pruned_best, pruned_value = summary(pruned)
    share = pruned_epochs / plain_epochs if plain_epochs else float("nan")

    def took(seconds: float) -> str:
        return "stored run" if seconds != seconds else f"{seconds:.0f} s"  # nan: not run now

    print(
        f"\nunpruned: {plain_epochs} epochs ({took(seconds_plain)}); best {describe(plain_best)}"
    )
    print(
        f"pruned ({json.dumps(pruner)}): {pruned_epochs} epochs ({took(seconds_pruned)}); "
        f"best {describe(pruned_best)}"
    )
    same = plain_best == pruned_best
    print(
        f"epochs pruned / unpruned: {share:.2f} (target <= 0.50: {'met' if share <= 0.5 else 'NOT met'}); "
        f"same best configuration: {'yes' if same else 'NO'} "
        f"(values {plain_value:.5f} / {pruned_value:.5f})"
    )

    print("\nreplayed on the unpruned curves (epochs, share, best found, same best?):")
    settings = [pruner] + [c for c in CANDIDATES if c != pruner]
    for candidate in settings:
        epochs, best, _ = replay(plain, candidate)
        mark = " (the real pruned run's pruner)" if candidate == pruner else ""
        print(
            f"  {json.dumps(candidate)}: {epochs} epochs, {epochs / plain_epochs:.2f}, "
            f"best {describe(best)}, {'same' if best == plain_best else 'DIFFERENT'}{mark}"
        )


if __name__ == "__main__":
    main()
