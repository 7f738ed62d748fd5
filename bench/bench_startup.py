"""Benchmark: what every study process pays before its first trial, each way side by side.

    python bench/bench_startup.py [--repeats 5]

1. A new SQLite MLflow store: opened by MLflow on an empty file (its migrations replayed), against
   a copy of the cached empty schema (`experiments.stores.mlflow_schema.seed_new_store`), then
   opened. Each in a new process, timed inside it, so both pay the same imports.
2. Keras (with TensorFlow), MLflow and Optuna imported in a new process with the cycle collector
   running, against `experiments.flow.study.load_libraries` (the collector paused).

Printed: the median of each, and the ratio of the old way to the new.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OPEN_STORE = """
import sys, time
from mlflow.tracking import MlflowClient
from experiments.stores.mlflow_schema import empty_schema, seed_new_store
uri = "sqlite:///" + sys.argv[1]
empty_schema()  # made once per machine: not part of either way's time
started = time.perf_counter()
if sys.argv[2] == "copy":
    seed_new_store(uri)
MlflowClient(uri).search_experiments()
print(time.perf_counter() - started)
"""

IMPORT = """
import sys, time
started = time.perf_counter()
if sys.argv[1] == "paused":
    from experiments.flow.study import load_libraries
    load_libraries()
else:  # the same modules, the collector running
    from experiments.flow import study
    import keras, mlflow, optuna
print(time.perf_counter() - started)
"""


def timed(script: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True
    ).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    stores = {"MLflow's migrations": [], "schema copy": []}
    imports = {"collector running": [], "collector paused": []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(repeats):  # interleaved: a busy spell hits both ways
            for way, mode in zip(stores, ("migrate", "copy"), strict=True):
                store = Path(scratch) / f"{mode}-{round_}.db"
                stores[way].append(timed(OPEN_STORE, str(store), mode))
            for way, mode in zip(imports, ("running", "paused"), strict=True):
                imports[way].append(timed(IMPORT, mode))
    for title, ways in (("a new MLflow store", stores), ("importing the libraries", imports)):
        print(f"{title} (median of {repeats}):")
        medians = {way: statistics.median(times) for way, times in ways.items()}
        for way, median in medians.items():
            print(f"  {way:>20}: {median:6.2f} s")
        old, new = medians.values()
        print(f"  old / new: {old / new:.2f}x")


if __name__ == "__main__":
    main()
