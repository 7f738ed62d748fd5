"""What the suite does without a binary it needs: a skip on a developer's machine, a failure
where `CI` is set (a broken install must not pass CI green); an untested backend is named in the
run's summary. A small test file run by a real pytest in a subprocess, with and without `CI`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`

ROOT = Path(__file__).resolve().parent.parent
TESTS = """
import pytest

from tests.needs import missing, needs, untested_backend


@needs("chromium is not installed", False)
def test_in_a_browser():
    pass


@needs("poppler is not installed", True)
def test_with_poppler_there():
    pass


def test_with_a_server_missing():
    missing("the PostgreSQL server is not installed")


@pytest.mark.parametrize(
    "backend", ["jax", pytest.param("torch", marks=untested_backend("torch", "not installed"))]
)
def test_on_a_backend(backend):
    pass
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_setup, pytest_terminal_summary  # noqa: F401\n"
    )
    (tmp_path / "test_machine.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    needs: test\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-rA",
         str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip


def test_without_ci_what_is_missing_is_skipped_and_the_untested_backend_named(tmp_path):
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed, 3 skipped" in result.stdout
    assert "SKIPPED [1] test_machine.py" in result.stdout
    assert "chromium is not installed" in result.stdout
    summary = result.stdout.split("backends not tested")[1]
    assert summary.splitlines()[1] == "torch (not installed)"


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_what_is_missing_fails_and_only_the_backend_is_skipped(tmp_path, ci):
    result = run_pytest(tmp_path, ci)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "chromium is not installed, and CI installs it (.ci/run)" in result.stdout
    assert "the PostgreSQL server is not installed, and CI installs it" in result.stdout
    # the browser test errors at its setup, the server test fails where it starts the server
    assert "1 failed, 2 passed, 1 skipped, 1 error" in result.stdout, result.stdout[-2000:]
    assert "torch (not installed)" in result.stdout.split("backends not tested")[1]


def test_ci_set_to_false_is_not_ci(tmp_path):
    assert run_pytest(tmp_path, "false").returncode == 0
