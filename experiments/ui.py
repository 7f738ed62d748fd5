"""Browse a study: the MLflow UI on its MLflow store, or optuna-dashboard on its Optuna storage,
bound to 127.0.0.1.

    python -m experiments.ui [runs_dir=mlruns] [tracking_uri=URI] [port=5000] [host=127.0.0.1]
    python -m experiments.ui dashboard [runs_dir=mlruns] [storage=URL] [port=8080]

The MLflow UI runs `mlflow ui` on the store a study wrote (`sqlite:///<runs_dir>/mlflow.db`, or
the `tracking_uri=` it was given: a SQLite file, a database URL; an MLflow server at an http(s)
address serves its own UI, so its address is printed). `dashboard` runs optuna-dashboard on the
study's Optuna storage (`sqlite:///<runs_dir>/optuna.db`, or `storage=`, a journal file too).
Binding to another host exposes the runs to the network: do so (`host=0.0.0.0`) only on a
trusted network. `MLFLOW_DISABLE_TELEMETRY=true` or `DO_NOT_TRACK=1` turns MLflow's usage
telemetry off for the server it starts (`experiments.common.telemetry`). The MLflow UI starts
without MLflow's GenAI job workers unless `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true` is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.common.command import command_args
from experiments.common.errors import USAGE_EXIT, UsageError
from experiments.common.links import experiment_link
from experiments.common.redact import connectable, masked_url
from experiments.common.telemetry import honour_opt_out
from experiments.settings.overrides import parse
from experiments.stores.store_urls import (
    check_sqlite,
    default_storage,
    default_tracking_uri,
    journal_path,
    sqlite_path,
)

DEFAULTS = {
    "mlflow": {"runs_dir": "mlruns", "tracking_uri": "", "port": "5000", "host": "127.0.0.1"},
    "dashboard": {"runs_dir": "mlruns", "storage": "", "port": "8080", "host": "127.0.0.1"},
}

JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # MLflow's switch for its job workers


class AlreadyServed(Exception):
    """The store is an MLflow server: it serves its own UI at this address."""


def _values(argv: list[str], kind: str) -> dict[str, str]:
    values = DEFAULTS[kind] | parse(argv, DEFAULTS[kind])
    if not values["port"].isdigit() or not 0 < int(values["port"]) < 65536:
        raise UsageError(f"port={values['port']} must be a number from 1 to 65535")
    return values


def _local_store(url: str, what: str, runs_dir: str) -> None:
    """A SQLite store must exist (the UI never creates one) and be whole."""
    path = sqlite_path(url) or journal_path(url)
    if path is not None and not path.is_file():
        raise UsageError(
            f"no {what} at {path}: run a study first (python -m experiments.run "
            f"runs_dir={runs_dir}), or pass the store it used"
        )
    check_sqlite(url, what)


def mlflow_ui_command(argv: list[str]) -> list[str]:
    """The `mlflow ui` command line for a study's MLflow store.

    Raises:
        AlreadyServed: the store is an MLflow server (its address is the message).
        UsageError: a bad argument, or no (or a damaged) store.
    """
    values = _values(argv, "mlflow")
    uri = values["tracking_uri"] or default_tracking_uri(values["runs_dir"])
    if uri.startswith(("http://", "https://")):
        raise AlreadyServed(uri)
    _local_store(uri, "MLflow store", values["runs_dir"])
    store = [] if _has_secret(uri) else ["--backend-store-uri", uri]  # else by environment
    return [
        sys.executable, "-m", "mlflow", "ui",
        *store,
        "--host", values["host"],
        "--port", values["port"],
        "--workers", "1",
    ]  # fmt: skip


def _has_secret(url: str) -> bool:
    return masked_url(url) != url


def secret_environment(argv: list[str], dashboard: bool) -> dict[str, str]:
    """What a server needs of a store URL's secret, passed by environment (never on its
    command line, which `ps` shows): the whole URL for the MLflow UI, the password (for
    PostgreSQL and MySQL drivers) for optuna-dashboard."""
    values = _values(argv, "dashboard" if dashboard else "mlflow")
    if not dashboard:
        uri = values["tracking_uri"] or default_tracking_uri(values["runs_dir"])
        return {"MLFLOW_BACKEND_STORE_URI": uri} if _has_secret(uri) else {}
    url = values["storage"] or default_storage(values["runs_dir"])
    if not _has_secret(url):
        return {}
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    if password is None or password == "***":
        return {}
    return {"PGPASSWORD": str(password), "MYSQL_PWD": str(password)}


def dashboard_command(argv: list[str]) -> list[str]:
    """The `optuna-dashboard` command line for a study's Optuna storage."""
    values = _values(argv, "dashboard")
    url = values["storage"] or default_storage(values["runs_dir"])
    _local_store(url, "Optuna storage", values["runs_dir"])
    journal = journal_path(url)
    script = Path(sys.executable).with_name("optuna-dashboard")
    if not script.is_file():
        raise UsageError("optuna-dashboard is not installed: pip install optuna-dashboard")
    return [
        str(script), str(journal) if journal else connectable(masked_url(url)),
        "--host", values["host"],
        "--port", values["port"],
        "--quiet",
    ]  # fmt: skip


def runs_links(uri: str, host: str, port: str) -> str:
    """Where each study's training runs are: each link opens the experiment in MLflow's
    "Model training" view (`experiments.common.links`); from the home page, the sidebar's switch picks
    the view (GenAI by default), remembered per browser."""
    from mlflow.tracking import MlflowClient

    experiments = [
        e for e in MlflowClient(uri).search_experiments() if e.name != "Default"
    ]  # fmt: skip
    base = f"http://{host}:{port}"
    lines = [f"  {e.name}: {experiment_link(base, e.experiment_id)}" for e in experiments]
    return "\n".join([
        *lines,
        'From the home page, choose "Model training" at the top of the sidebar: experiments then '
        "open on their training runs (the browser remembers it).",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = command_args(argv, lambda: __doc__.strip())
    if args is None:
        return 0
    dashboard = bool(args) and args[0] == "dashboard"
    try:
        command = dashboard_command(args[1:]) if dashboard else mlflow_ui_command(args)
        secrets = secret_environment(args[1:] if dashboard else args, dashboard)
    except AlreadyServed as served:
        print(f"{served} is an MLflow server: its UI is at {served} (open it in a browser)")
        return 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    host, port = command[command.index("--host") + 1], command[command.index("--port") + 1]
    page = "/dashboard/" if dashboard else ""
    what = "optuna-dashboard" if dashboard else "MLflow UI"
    print(f"{what} on http://{host}:{port}{page} (Ctrl-C stops it)", flush=True)
    if not dashboard:
        uri = (
            secrets.get("MLFLOW_BACKEND_STORE_URI")
            or command[command.index("--backend-store-uri") + 1]
        )
        print(runs_links(uri, host, port), flush=True)
    honour_opt_out()  # the server inherits the user's choice on MLflow's telemetry
    if not dashboard:
        # MLflow's server would start a job runner and seven worker processes for its GenAI
        # jobs (LLM judges, prompt optimization), each loading MLflow, that browsing a study
        # never uses (bench/bench_ui_processes.py). A user's own setting stands.
        os.environ.setdefault(JOB_EXECUTION, "false")
    os.environ.update(secrets)
    os.execv(command[0], command)  # the server replaces this process: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
