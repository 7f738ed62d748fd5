"""The tests' in-process command runner (`tests.studies_helpers.run_in_process`): what a command
prints and returns comes back as from a new process, and what it changes of the process is put
back, so the next test starts as before."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import warnings

import mlflow
import pytest

from experiments.common import redact  # its import sets the telemetry defaults: done before
from tests.studies_helpers import run_in_process

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def a_command_that_changes_everything(argv: list[str]) -> int:
    print("out:", *argv)
    print("err: one line", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("mlflow").setLevel(logging.CRITICAL)
    logging.getLogger("some.command").warning("logged")
    warnings.warn("a user warning", UserWarning, stacklevel=1)
    warnings.simplefilter("ignore")
    os.environ["COLORIZE_IN_PROCESS_TEST"] = "set"
    os.chdir(tempfile.gettempdir())
    signal.signal(signal.SIGTERM, lambda *_: None)
    mlflow.set_tracking_uri("sqlite:////nowhere/mlflow.db")
    return 3


def test_output_and_exit_come_back_and_the_process_is_put_back(tmp_path):
    mlflow_level = logging.getLogger("mlflow").level
    streams = sys.stdout, sys.stderr
    before = (dict(os.environ), os.getcwd(), signal.getsignal(signal.SIGTERM))
    handlers, filters = logging.getLogger().handlers[:], warnings.filters[:]
    result = run_in_process(
        a_command_that_changes_everything, ["-m", "cmd", "a", "b"], env={"TMPDIR": str(tmp_path)}
    )
    assert result.returncode == 3 and result.stdout == "out: a b\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "err: one line" and "WARNING: logged" in lines
    assert any("UserWarning: a user warning" in line for line in lines)
    assert (dict(os.environ), os.getcwd(), signal.getsignal(signal.SIGTERM)) == before
    assert logging.getLogger().handlers == handlers and warnings.filters == filters
    assert logging.getLogger("mlflow").level == mlflow_level
    assert (sys.stdout, sys.stderr) == streams
    assert mlflow.get_tracking_uri() != "sqlite:////nowhere/mlflow.db"


@pytest.mark.parametrize(
    "ending, code, said", [(None, 0, ""), (2, 2, ""), ("error: why", 1, "error: why")]
)
def test_sys_exit_ends_as_the_interpreter_would(ending, code, said):
    def command(argv):
        sys.exit(ending)

    result = run_in_process(command, ["-m", "cmd"])
    assert result.returncode == code and result.stderr.strip() == said


def test_an_exception_is_a_traceback_and_exit_1():
    def command(argv):
        raise RuntimeError("boom")

    result = run_in_process(command, ["-m", "cmd"])
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


def test_pytest_s_own_stop_goes_through_and_secrets_are_forgotten():
    """A timeout (pytest-timeout fails the test from inside the command) is not turned into an
    exit code; a secret a command was given is not masked in later tests' commands."""

    def times_out(argv):
        pytest.fail("Timeout >900.0s")

    with pytest.raises(pytest.fail.Exception):
        run_in_process(times_out, ["-m", "cmd"])
    known = set(redact._known)

    def given_a_password(argv):
        redact.guard_console(argv)
        return 0

    secret = "postgresql://user:s3cret-from-a-test@host/db"
    assert run_in_process(given_a_password, ["-m", "cmd", f"storage={secret}"]).returncode == 0
    assert redact._known == known
