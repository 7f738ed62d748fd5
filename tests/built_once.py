"""A smoke study built once for the whole test run, however many xdist workers share it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DONE = "built.json"  # written last: its presence means the build finished


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every worker of this run sees: the parent of the workers' own base folders
    under xdist (`.../pytest-N/popen-gw0`), this process's base folder without it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def study_built_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[Path], subprocess.CompletedProcess],
    folder: str = "runs",
) -> tuple[Path, subprocess.CompletedProcess]:
    """`build(runs_dir)` runs a study command into `runs_dir`; the first worker to ask builds it
    (the other waits on a lock rather than build it too), and each worker gets its own copy of
    the stores (`copy_stores`), so no test sees another worker's writes. Returns (this
    worker's runs_dir, named `folder`; the command as it finished, naming the runs_dir it
    was given)."""
    from tests.studies_helpers import copy_stores

    root = shared_root(tmp_path_factory) / f"built-{name}"
    root.mkdir(exist_ok=True)
    built, done = root / folder, root / DONE
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            result = build(built)
            assert result.returncode == 0, result.stderr[-3000:]
            command = {
                "args": [str(a) for a in result.args],
                "stdout": result.stdout,
                "stderr": result.stderr,
            }
            done.write_text(json.dumps(command))
    command = json.loads(done.read_text())
    finished = subprocess.CompletedProcess(
        command["args"], 0, command["stdout"], command["stderr"]
    )
    return copy_stores(built, tmp_path_factory.mktemp(name) / folder), finished
