"""Stores that are damaged: garbage written into a real Optuna or MLflow store is a one-line error
naming the file, from the study, the report and the UI alike, and nothing is written."""

from __future__ import annotations

import os

import pytest

from experiments.report.__main__ import main as report_main
from experiments.run import main as run_main
from experiments.ui import main as ui_main
from tests.studies_helpers import copy_stores


@pytest.fixture
def runs_dir(smoke_optimizers_study, tmp_path):
    return copy_stores(smoke_optimizers_study[0], tmp_path / "runs")


def overwrite_header(path) -> None:
    with open(path, "r+b") as handle:
        handle.write(os.urandom(100))


def overwrite_middle(path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(8192))


@pytest.mark.parametrize("damage", [overwrite_header, overwrite_middle])
@pytest.mark.parametrize(
    "store,what", [("optuna.db", "Optuna storage"), ("mlflow.db", "MLflow store")]
)
def test_a_damaged_store_is_a_one_line_error_naming_it(runs_dir, store, what, damage, capsys):
    damage(runs_dir / store)
    before = sorted(p.name for p in runs_dir.iterdir())
    assert run_main(["study=optimizers", "profile=smoke", f"runs_dir={runs_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {what} {runs_dir / store} ")
    assert "move it aside" in err
    assert sorted(p.name for p in runs_dir.iterdir()) == before
    if store == "mlflow.db":  # the readers say the same
        assert report_main(["study=optimizers", f"runs_dir={runs_dir}"]) == 2
        assert f"MLflow store {runs_dir / store}" in capsys.readouterr().err
        assert ui_main([f"runs_dir={runs_dir}"]) == 2
        assert f"MLflow store {runs_dir / store}" in capsys.readouterr().err


def test_the_ui_opens_any_store_a_study_accepts(runs_dir, tmp_path, capsys):
    from experiments.ui import dashboard_command, mlflow_ui_command

    other = f"sqlite:///{runs_dir / 'mlflow.db'}"
    command = mlflow_ui_command([f"tracking_uri={other}", "port=5055"])
    assert command[command.index("--backend-store-uri") + 1] == other
    assert command[command.index("--host") + 1] == "127.0.0.1"
    postgres = "postgresql+psycopg2://user@db.example/mlflow"
    assert postgres in mlflow_ui_command([f"tracking_uri={postgres}"])
    assert ui_main(["tracking_uri=http://tracking.example:5000"]) == 0  # a server serves its own
    assert "http://tracking.example:5000 is an MLflow server" in capsys.readouterr().out
    journal = tmp_path / "study.log"
    journal.write_text("")
    assert str(journal) in dashboard_command([f"storage=journal:{journal}"])
    assert ui_main(["dashboard", f"storage=journal:{tmp_path / 'none.log'}"]) == 2
    assert "no Optuna storage at" in capsys.readouterr().err


HOLD_A_WRITE = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # changed pages spill into the file at once
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE t SET value = value + 1")
connection.execute("INSERT INTO t SELECT value + 1000 FROM t")
print("writing", flush=True)
time.sleep(600)
"""


def test_a_writer_killed_mid_transaction_is_recovered_not_called_damaged(tmp_path):
    """`kill -9` of a process in the middle of a write leaves a hot rollback journal; the next
    check is SQLite's own recovery (the write rolled back), not a 'damaged store'."""
    import signal
    import sqlite3
    import subprocess
    import sys

    from experiments.stores.store_urls import check_sqlite

    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (value INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(2000)])
    connection.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_WRITE, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"  # its transaction is open
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    journal = tmp_path / "mlflow.db-journal"
    assert journal.is_file() and journal.stat().st_size > 0  # hot: the write was cut short
    check_sqlite(f"sqlite:///{path}", "MLflow store")  # no error: recovered
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT count(*), sum(value) FROM t").fetchone()
    connection.close()
    assert rows == (2000, sum(range(2000)))  # as before the killed write
