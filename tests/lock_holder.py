"""What a process spawned by `test_registration_lock` runs to hold a store's lock: a module of
its own, so the fresh interpreter imports only the lock, not the test module's MLflow."""

from __future__ import annotations

import time

HELD = 1.0  # seconds each process holds the lock


def hold(barrier, url: str, times) -> None:
    """Wait for the other process, take the lock, hold it `HELD` seconds, put (start, end)
    on the queue `times`."""
    from experiments.stores.store_locks import store_lock

    barrier.wait(timeout=60)
    with store_lock(url, "publish.test", required=True):
        start = time.monotonic()
        time.sleep(HELD)  # the lock is held this long: the other process must wait it out
        times.put((start, time.monotonic()))
