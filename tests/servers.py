"""Real servers for tests, started on loopback ports and stopped with their children."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from experiments.ui import JOB_EXECUTION
from tests.needs import missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_command_lines(leader: int, but: int | None = None) -> list[bytes]:
    """The command lines (as `ps` shows them) of every process in `leader`'s session, but the
    process `but`."""
    lines = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == but:
            continue
        try:
            if os.getsid(int(entry.name)) == leader:
                lines.append((entry / "cmdline").read_bytes())
        except (OSError, ProcessLookupError):
            continue  # ended meanwhile
    return lines


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@contextmanager
def postgres_server(password: str | None = None):
    """A throw-away PostgreSQL cluster on a free loopback port; yields (host, port, user).
    With `password`, connections over TCP must give it (the superuser's password)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        missing("the PostgreSQL server is not installed (apt-get install postgresql)")
    bin_dir = Path(bins[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="pg-test-", dir="/tmp"))
    base.chmod(0o755)
    data = base / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(base, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    auth = ["--auth=trust"]
    if password is not None:
        (base / "pwfile").write_text(password + "\n")
        if as_postgres:
            shutil.chown(base / "pwfile", "postgres", "postgres")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={base / 'pwfile'}"]
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", *auth],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=100"
    subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "start",
            "-l",
            str(base / "server.log"),
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield "127.0.0.1", port, "postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_database(
    host: str, port: int, user: str, name: str, password: str | None = None
) -> str:
    import psycopg2

    connection = psycopg2.connect(
        host=host, port=port, user=user, dbname="postgres", password=password
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    login = f"{user}:{password}" if password else user
    return f"postgresql+psycopg2://{login}@{host}:{port}/{name}"


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, port: int | None = None):
    """`mlflow server` on `port` (a free loopback port by default); yields its URL; stops its
    process group."""
    port = port or free_port()
    log = open(artifacts.parent / f"mlflow-server-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            # stopped at once, open connections or not: a study's keep-alive connection would
            # otherwise hold a stop for seconds
            "--uvicorn-opts",
            "--timeout-graceful-shutdown 1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # without MLflow's GenAI job runner and its seven workers (as `experiments.ui` starts it)
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", JOB_EXECUTION: "false"},
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited: see {log.name}")
        try:
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 120, "mlflow server")
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@contextmanager
def running(command: list[str], health_url: str, env: dict | None = None, timeout: float = 120):
    """Start a server `command` in its own process group, wait until `health_url` answers 200,
    yield the process, then stop the whole group (workers too) and wait until it is gone.

    The command finds this environment's commands first on its PATH, as in an activated
    environment (`mlflow models serve` runs `uvicorn` by name); a server that exits early fails
    with the end of its output."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        command,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PATH": path, **(env or {})},
    )

    def healthy() -> bool:
        if process.poll() is not None:
            output.seek(0)
            raise AssertionError(f"{command[:3]} exited: {output.read()[-2000:]}")
        try:
            return requests.get(health_url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, timeout, " ".join(command[:4]))
        yield process
    finally:
        # a server that exited on its own left no group: its own error is the one to show
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(group_gone, 30, "the end of the server's process group")
