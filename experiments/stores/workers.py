"""More worker processes on this machine (`workers=N`): the same command, joining the same study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

SECONDARY_ENV = "COLORIZE_SECONDARY_WORKER"  # set for the extra processes `workers=N` starts
INDEX_ENV = "COLORIZE_WORKER_INDEX"  # 0 for the first process, 1.. for the extra ones
SECRET_ARGS_ENV = "COLORIZE_SECRET_ARGS"  # arguments holding a secret, kept off the command line


def is_secondary() -> bool:
    return os.environ.get(SECONDARY_ENV) == "1"


def worker_index() -> int:
    return int(os.environ.get(INDEX_ENV, "0"))


def start_workers(argv: list[str], count: int, logs_dir: Path) -> list[subprocess.Popen]:
    """Start `count` more processes of the same command (workers=1) on the same study."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    from experiments.common.redact import masked_url

    args = [a for a in argv if not a.startswith("workers=")] + ["workers=1"]
    secret = [a for a in args if masked_url(a) != a]  # passed by environment: `ps` shows argv
    args = [a for a in args if a not in secret]
    processes = []
    for index in range(1, count + 1):
        env = {**os.environ, SECONDARY_ENV: "1", INDEX_ENV: str(index)}
        env[SECRET_ARGS_ENV] = json.dumps(secret)
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


def secret_args() -> list[str]:
    """The arguments with a secret that started this extra worker, given by environment."""
    return json.loads(os.environ.get(SECRET_ARGS_ENV, "[]")) if is_secondary() else []


def stop_workers(processes: list[subprocess.Popen], interrupted: bool) -> None:
    for process in processes:
        if interrupted and process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait()
