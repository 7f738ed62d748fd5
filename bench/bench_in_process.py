"""Benchmark: one smoke study through the command in a new process, against the same command
called in a process that has run one already (as the tests call it, `tests/studies_helpers.py`).

    python bench/bench_in_process.py [--repeats 2]

Each round runs `study=optimizers profile=smoke` into a new runs folder three ways: `python -m
experiments.run` as a new process (what a user's shell does), then twice through
`experiments.run.main` here; the first call here loads Keras, MLflow and Optuna, the second finds
them loaded. Printed: the median wall time of each, and the new process's time over the second
in-process call's (what a test saves a call).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["study=optimizers", "profile=smoke"]


def new_process(runs_dir: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "experiments.run", *ARGS, f"runs_dir={runs_dir}"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def here(runs_dir: Path) -> float:
    from experiments.run import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main([*ARGS, f"runs_dir={runs_dir}"])
    if code != 0:
        raise SystemExit(f"the study exited {code}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"new process": [], "here, first": [], "here, loaded": []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.repeats):
            folder = Path(scratch) / str(round_)
            times["new process"].append(new_process(folder / "a"))
            first = here(folder / "b")
            if round_ == 0:
                times["here, first"].append(first)
            times["here, loaded"].append(here(folder / "c"))
    for name, values in times.items():
        if values:
            print(f"{name:>14}: {statistics.median(values):6.1f} s (median of {len(values)})")
    ratio = statistics.median(times["new process"]) / statistics.median(times["here, loaded"])
    print(f"new process / here, loaded: {ratio:.2f}x")


if __name__ == "__main__":
    main()
