"""Benchmark: what the MLflow UI that `experiments.ui` starts costs, with MLflow's GenAI job
workers (`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true`, MLflow's default) and without them (this
project's default).

    python bench/bench_ui_processes.py [--settle 10]

Each way: a smoke `optimizers` study's store served on a free loopback port; once the UI answers
`/health` and `--settle` seconds have passed (the job workers start after the UI does), every
process of the server's session is counted with its CPU time and resident memory (summed over
the processes, so pages they share count once in each). One start without measuring first, so
neither way meets cold file caches. Printed side by side, then the ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.ui import JOB_EXECUTION  # noqa: E402
from tests.servers import free_port, wait_until  # noqa: E402
from tests.studies_helpers import run_cli  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def session_usage(session: int) -> tuple[int, float, float]:
    """(processes, CPU seconds, summed resident GB) of every process in `session`."""
    count, cpu, resident = 0, 0.0, 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError):
            continue  # ended meanwhile
        count += 1
        cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        resident += pages * PAGE / 1e9
    return count, cpu, resident


def measure(runs_dir: Path, jobs: str, settle: float) -> tuple[int, float, float, float]:
    """(processes, CPU s, resident GB, seconds to /health) of the UI with `JOB_EXECUTION=jobs`."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "experiments.ui", f"runs_dir={runs_dir}", f"port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, JOB_EXECUTION: jobs},
        start_new_session=True,
    )

    def healthy() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 180, "the MLflow UI")
        up = time.perf_counter() - started
        time.sleep(settle)
        return (*session_usage(server.pid), up)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs_dir = Path(folder) / "runs"
        run_cli(
            "study=optimizers", "profile=smoke", f"runs_dir={runs_dir}", fresh=True
        ).check_returncode()
        measure(runs_dir, "false", 0)  # warm-up: files read once before either is measured
        with_jobs = measure(runs_dir, "true", args.settle)
        without = measure(runs_dir, "false", args.settle)
    print(f"{'':>22} {'processes':>9} {'CPU s':>7} {'RSS sum GB':>10} {'to /health s':>12}")
    for name, (count, cpu, resident, up) in (("with job workers", with_jobs),
                                              ("without (default)", without)):  # fmt: skip
        print(f"{name:>22} {count:>9} {cpu:>7.1f} {resident:>10.2f} {up:>12.1f}")
    print(
        f"with / without: CPU {with_jobs[1] / without[1]:.1f}x, "
        f"summed resident memory {with_jobs[2] / without[2]:.1f}x"
    )


if __name__ == "__main__":
    main()
