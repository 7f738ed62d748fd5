"""The two-process registration test with its lock disabled, to see that it can fail.

    python tests/demos/registration_without_lock.py SCRATCH_FOLDER

Runs a smoke `optimizers` study once, then the same two processes as
`tests/test_registration_lock.py` (released together by a barrier, the duplicate cleanup off), but
with the registration lock replaced by a no-op; then the test's own check. Without the lock both
processes register every model, so the check must fail (each model twice)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import tests.test_registration_lock as two_processes  # noqa: E402


def _rerun_without_lock(barrier, argv: list[str]) -> None:
    from experiments import tracking
    from experiments.run import main

    def together(self, registered):
        barrier.wait(timeout=300)
        return contextlib.nullcontext()  # the lock, disabled

    tracking.Tracker.publishing = together
    tracking.Tracker._keep_first_version = lambda self, registered, run_id, version, latest: (
        version
    )
    sys.exit(main(argv))


if __name__ == "__main__":
    scratch = Path(sys.argv[1])
    base = scratch / "finished"
    command = [sys.executable, "-m", "experiments.run", "study=optimizers", "profile=smoke"]
    subprocess.run([*command, f"runs_dir={base}"], check=True, capture_output=True)
    runs_dir = two_processes._unregistered_copy((base,), scratch / "twice")
    two_processes._rerun_at_once = _rerun_without_lock
    print("exit codes:", two_processes._two_at_once([*two_processes.ARGS, f"runs_dir={runs_dir}"]))
    try:
        two_processes.check_one_version_per_model(f"sqlite:///{runs_dir / 'mlflow.db'}")
        print("the check passed: this run did not show the race")
    except AssertionError as error:
        print("the check failed, as it must without the lock:", str(error).splitlines()[0])
