"""A smoke study built once for the whole test run, however many xdist workers share it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DONE = "built.json"  # written once the build ended: its command and how it ended


def shared_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every worker of this run sees: the parent of the workers' own base folders
    under xdist (`.../pytest-N/popen-gw0`), this process's base folder without it."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def study_built_once(
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
    name: str,
    build: Callable[[Path], subprocess.CompletedProcess],
    folder: str = "runs",
) -> tuple[Path, subprocess.CompletedProcess]:
    """`build(runs_dir)` runs a study command into `runs_dir`; the first worker to ask builds it
    (the other waits on a lock rather than build it too), and each worker gets its own copy of
    the stores (`copy_stores`), so no test sees another worker's writes. A failed build is
    not tried again by the other worker: both fail with its output. Returns (this worker's
    runs_dir, named `folder`; the command as it finished, naming the runs_dir it was given).
    `worker_id`: xdist's fixture of that name ("master" without xdist)."""
    from colorize.locks import exclusive
    from tests.studies_helpers import copy_stores

    root = shared_root(tmp_path_factory, worker_id) / f"built-{name}"
    root.mkdir(exist_ok=True)
    built, done = root / folder, root / DONE
    with exclusive(root / "lock"):
        if not done.exists():
            result = build(built)
            done.write_text(
                json.dumps(
                    {
                        "args": [str(a) for a in result.args],
                        "returncode": result.returncode,
                        "stdout": result.stdout,
                        "stderr": result.stderr,
                    }
                )
            )
    command = json.loads(done.read_text())
    finished = subprocess.CompletedProcess(
        command["args"], command["returncode"], command["stdout"], command["stderr"]
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return copy_stores(built, tmp_path_factory.mktemp(name) / folder), finished
