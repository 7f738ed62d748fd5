"""Helpers for study tests: run the real command line and read the stores back."""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import optuna


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 600, fresh: bool = False
) -> subprocess.CompletedProcess:
    """`python -m experiments.run *args`: in this process (`run_in_process`), or with `fresh`,
    in a new one (for what only a new process shows: native output, its start-up, signals)."""
    if not fresh:
        from experiments.run import main

        return run_in_process(main, ["-m", "experiments.run", *args], cwd=cwd)
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def run_report(*args: str) -> subprocess.CompletedProcess:
    """`python -m experiments.report *args`, in this process (`run_in_process`)."""
    from experiments.report.__main__ import main

    return run_in_process(main, ["-m", "experiments.report", *args])


def run_in_process(
    main: Callable[[list[str]], int],
    argv: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Call a command's `main(argv[2:])` here as a new process would run it, and return what it
    returned and printed (Python-level output; the native libraries' own lines go elsewhere).

    A test worker has Keras, MLflow and Optuna loaded already: seconds saved a command. What a
    command changes for its process is put back afterwards: the environment, the working folder,
    signal handlers, logging's handlers and levels, warning filters, sys.stdout and sys.stderr,
    the secrets it was given to mask. pytest's own exceptions (a timeout) and Ctrl-C go through.
    Warnings print to its stderr, each once, as in a new process (not recorded by pytest).
    `env`: variables set for it; the temp folder and MLflow's tracking and registry URIs are read
    from the environment again, as a new process would (an earlier test may have set them)."""
    import tempfile

    from _pytest.outcomes import OutcomeException
    from mlflow.tracking._model_registry import utils as registry_uri
    from mlflow.tracking._tracking_service import utils as tracking_uri

    from experiments.common import redact

    uris = tracking_uri._tracking_uri, registry_uri._registry_uri, tempfile.tempdir
    secrets = set(redact._known)  # the values a command was given, masked from then on
    out, err = io.StringIO(), io.StringIO()
    environment, folder = dict(os.environ), os.getcwd()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    root = logging.getLogger()
    root_state = (root.handlers[:], root.level)
    loggers = {
        logger: (logger.level, logger.filters[:])
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    }
    streams = sys.stdout, sys.stderr
    code = 1
    with warnings.catch_warnings():
        warnings.resetwarnings()  # a fresh process's filters; "once" starts over
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
            warnings.simplefilter("ignore", category)
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: (
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        )
        try:
            root.handlers[:], root.level = [], logging.WARNING  # as new: basicConfig applies
            os.environ.update(env or {})
            tracking_uri._tracking_uri = registry_uri._registry_uri = tempfile.tempdir = None
            if cwd is not None:
                os.chdir(cwd)
            sys.stdout, sys.stderr = out, err
            code = main(argv[2:])
        except SystemExit as exit_:  # as the interpreter ends: None is 0, a message is 1
            code = 0 if exit_.code is None else exit_.code
            if not isinstance(code, int):
                print(code, file=err)
                code = 1
        except (KeyboardInterrupt, OutcomeException):  # pytest's own: a timeout, a Ctrl-C
            raise
        except BaseException:  # what a new process would print before exiting 1
            traceback.print_exc(file=err)
            code = 1
        finally:
            sys.stdout, sys.stderr = streams
            os.chdir(folder)
            os.environ.clear()
            os.environ.update(environment)
            tracking_uri._tracking_uri, registry_uri._registry_uri, tempfile.tempdir = uris
            redact._known.clear()
            redact._known.update(secrets)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            root.handlers[:], root.level = root_state
            for logger, (level, filters) in loggers.items():
                logger.level, logger.filters[:] = level, filters
    return subprocess.CompletedProcess(
        [sys.executable, *argv], code, out.getvalue(), err.getvalue()
    )


def native_log_lines(stderr: str) -> list[str]:
    """Lines in absl's log format ("E0000 ..."), e.g. TensorFlow's failed CUDA probe."""
    return re.findall(r"^[EWIF]\d{4} .*$", stderr, re.MULTILINE)


def run_colorize(
    *args: str, runs_dir: Path | None = None, temp_dir: Path | None = None, fresh: bool = False
) -> subprocess.CompletedProcess:
    """`python -m colorize`: here (`run_in_process`), or with `fresh` in a new process; with
    `runs_dir`, `models:/` URIs resolve in that study's MLflow; with `temp_dir`, that is its temp
    folder (TMPDIR)."""
    env = {}
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(temp_dir)
    if runs_dir is not None:
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}"
    if not fresh:
        from colorize.__main__ import main

        return run_in_process(main, ["-m", "colorize", *args], env=env)
    return subprocess.run(
        [sys.executable, "-m", "colorize", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def colorize_photo_with_registered_model(
    runs_dir: Path, work_dir: Path, rgb: np.ndarray, model: str = "optimizers"
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Write `rgb` as `<work_dir>/in/cat.png` and colorize it into `<work_dir>/out` with the
    model registered by the study in `runs_dir`, with `<work_dir>/tmp` as its temp folder;
    returns (photo, output folder, result)."""
    from tests.conftest import write_photo

    photo = write_photo(work_dir / "in" / "cat.png", rgb)
    out = work_dir / "out"
    result = run_colorize(
        "--model", f"models:/{model}/latest", "--input", str(work_dir / "in"),
        "--output", str(out), runs_dir=runs_dir, temp_dir=work_dir / "tmp",
    )  # fmt: skip
    return photo, out, result


def load_trials(runs_dir: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{runs_dir.resolve() / 'optuna.db'}"
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def mlflow_runs(runs_dir: Path, study: str):
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[study])


def copy_stores(source: Path, target: Path) -> Path:
    """A copy of a runs folder whose stores point into the copy: MLflow records absolute
    artifact locations, so a plain copy would still write artifacts into `source`."""
    import shutil
    import sqlite3

    shutil.copytree(source, target, dirs_exist_ok=True)
    old, new = str(source.resolve()), str(target.resolve())
    with sqlite3.connect(target / "mlflow.db") as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for column in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    connection.execute(
                        f'UPDATE "{table}" SET "{column[1]}" = REPLACE("{column[1]}", ?, ?) '
                        f'WHERE "{column[1]}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )
    return target
