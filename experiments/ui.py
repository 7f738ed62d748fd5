"""Open the MLflow UI on the project's store, bound to 127.0.0.1.

    python -m experiments.ui [runs_dir=mlruns] [port=5000] [host=127.0.0.1]

Runs `mlflow ui` with the store a study wrote (`sqlite:///<runs_dir>/mlflow.db`, artifacts under
`<runs_dir>/artifacts`). Binding to another host exposes the runs to the network: say so with
`host=0.0.0.0` only on a trusted network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.errors import USAGE_EXIT, UsageError

KEYS = {"runs_dir": "mlruns", "port": "5000", "host": "127.0.0.1"}


def mlflow_ui_command(argv: list[str]) -> list[str]:
    values = dict(KEYS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise UsageError(
                f"unknown argument {arg!r}; allowed: {', '.join(f'{k}=' for k in KEYS)}"
            )
        values[key] = value
    if not values["port"].isdigit() or not 0 < int(values["port"]) < 65536:
        raise UsageError(f"port={values['port']} must be a number from 1 to 65535")
    store = Path(values["runs_dir"]).expanduser().resolve() / "mlflow.db"
    if not store.exists():
        raise UsageError(
            f"no MLflow store at {store}: run a study first (python -m experiments.run)"
        )
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", f"sqlite:///{store}",
        "--host", values["host"],
        "--port", values["port"],
        "--workers", "1",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--help" in args or "-h" in args:
        print(__doc__.strip())
        return 0
    try:
        command = mlflow_ui_command(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    print(f"MLflow UI on http://{command[command.index('--host') + 1]}:{command[-3]}", flush=True)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.execv(command[0], command)  # the UI replaces this process: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
