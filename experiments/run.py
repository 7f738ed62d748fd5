"""Run a study: Optuna (or Keras Tuner) trials over a search space, every trial logged to MLflow.

    python -m experiments.run study=optimizers [profile=quick] [key=value ...]
    python -m experiments.run --help        # studies, profiles and every key
    python -m experiments.run study=epochs --cfg   # print the resolved config, run nothing

Rerunning the same command resumes the study: finished trials are kept and the total is capped.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback

from colorize.backend import BackendUnavailable
from experiments.common.errors import (
    INTERRUPTED_EXIT,
    STOPPED_EXIT,
    USAGE_EXIT,
    StudyStopped,
    UsageError,
    first_line,
)
from experiments.common.redact import guard_console
from experiments.common.telemetry import honour_opt_out
from experiments.settings import config as config_module
from experiments.settings.config import (
    ALLOWED_VALUES,
    DEFAULT_PROFILE,
    available_profiles,
    available_studies,
    compose,
    profile_values,
)

log = logging.getLogger("experiments")
TRACEBACK_ENV = "COLORIZE_TRACEBACK"  # =1: a stopped study prints its traceback too


def _shown(value) -> str:
    return "" if value is None else str(value)


def key_lines() -> list[str]:
    """Each key with its value under the default profile, the other profiles' values where
    they differ, and its allowed values."""
    profiles = {name: profile_values(name) for name in available_profiles()}
    default = profiles[DEFAULT_PROFILE]
    lines = []
    for key, value in default.items():
        others = [
            f"{name} {_shown(values[key])}"
            for name, values in profiles.items()
            if name != DEFAULT_PROFILE and values[key] != value and key != "profile"
        ]
        allowed = ALLOWED_VALUES.get(key)
        extra = f"; one of {', '.join(map(str, allowed))}" if allowed else ""
        extra += f" (profile {', '.join(others)})" if others else ""
        lines.append(f"  {key}={_shown(value)}{extra}")
    return lines


def help_text() -> str:
    from experiments.settings.config import load_profile
    from experiments.settings.study_spec import load_study

    lines = [
        "usage: python -m experiments.run study=NAME [profile=NAME] [key=value ...] [--cfg]",
        "",
        "Runs a hyperparameter study of the LAB colorization network; every trial is logged to",
        "MLflow (sqlite:///<runs_dir>/mlflow.db) and the study is stored by Optuna",
        "(sqlite:///<runs_dir>/optuna.db). Rerunning the same command resumes it.",
        "",
        "  --cfg     print the resolved configuration, the study and the fingerprint it would",
        "            be stored under (and whether the stored study matches it); run nothing",
        "  --help    this text",
        "",
        "studies (studies/<name>.yaml):",
    ]
    for name in available_studies():
        spec = load_study(name)
        lines.append(f"  {name:<13} {spec.description[:86]}")
        what = "objectives (Pareto front)" if spec.is_multi else "objective"
        lines.append(f"  {'':<13} {what}: {spec.describe_objectives()}")
    lines += ["", "profiles (studies/profiles/<name>.yaml; default quick):"]
    for name in available_profiles():
        lines.append(f"  {name:<13} {load_profile(name)[0].description}")
    lines += ["", f"keys (value at profile {DEFAULT_PROFILE}; allowed values; other profiles):"]
    lines += key_lines()
    lines += [
        "",
        "examples:",
        "  python -m experiments.run study=optimizers",
        "  python -m experiments.run study=epochs profile=smoke runs_dir=/tmp/runs",
        "  python -m experiments.run study=architecture data.train_dir=photos/train trainer.epochs=5",
        "  python -m experiments.run study=optimizers engine=keras_tuner",
    ]
    return "\n".join(lines)


def expected_retracing(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's "triggered tf.function retracing" warning, which is expected here: a
    study builds a new model, hence new compiled steps, every trial, and TensorFlow counts their
    first traces together. Traces within one model, which are avoidable, are avoided instead:
    batches have one shape and predictions run without a compiled function."""
    return "triggered tf.function retracing" not in record.getMessage()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    from experiments.stores.workers import secret_args

    args = list(sys.argv[1:] if argv is None else argv) + secret_args()
    honour_opt_out()  # MLflow's telemetry, as the user chose it (also for workers it starts)
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    guard_console(args)
    show_config = "--cfg" in args
    args = [a for a in args if a != "--cfg"]
    try:
        from colorize.images import pixel_limit
        from experiments.settings.study_spec import load_study

        try:
            pixel_limit()  # COLORIZE_MAX_MEGAPIXELS, checked before any photo is read
        except ValueError as error:
            raise UsageError(str(error)) from None

        def study_info(name: str):
            spec = load_study(name)
            return spec.fixed, spec.searched_keys

        cfg, profile = compose(args, study_info=study_info)
        spec = load_study(cfg.study).for_profile(profile, cfg.trainer.epochs)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    if show_config:
        print(config_module.to_yaml(cfg), end="")
        print(f"# study {spec.name}: {spec.description}")
        if spec.is_multi:
            print(f"# objectives {spec.describe_objectives()}: their Pareto front is searched")
            print(f"# sampler {spec.sampler}; pruner {spec.pruner}")
        else:
            print(
                f"# metric {spec.metric} ({spec.direction}); sampler {spec.sampler}; pruner "
                f"{spec.pruner}"
            )
        print(f"# space: { {k: p.choices or [p.low, p.high] for k, p in spec.space.items()} }")
        print(f"# trials: {spec.total_trials(profile, cfg.n_trials)}")
        from experiments.flow.study import fingerprint_lines

        try:
            print("\n".join(fingerprint_lines(cfg, spec, profile)))
        except UsageError as error:
            print(f"error: {error}", file=sys.stderr)
            return USAGE_EXIT
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3"):  # urllib3: each retry of a server gone
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # a store error's traceback: the trial it failed, or the study it stopped, says it in a line
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    logging.getLogger("tensorflow").addFilter(expected_retracing)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        from experiments.flow.study import run

        return run(cfg, profile, spec, argv=args)
    except (UsageError, BackendUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    except KeyboardInterrupt:
        print(
            "interrupted: the current trial was closed; rerun the same command to resume",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT
    except Exception as error:  # a fault the study cannot go on through: one line, exit 1
        if os.environ.get(TRACEBACK_ENV) == "1":
            traceback.print_exc()
        reason = str(error) if isinstance(error, StudyStopped) else first_line(error)
        print(
            f"error: the study stopped: {reason}; once that is fixed, rerun the same command: "
            "it closes any run left open, retries the failed trial and finishes the study",
            file=sys.stderr,
        )
        return STOPPED_EXIT


if __name__ == "__main__":
    sys.exit(main())
