"""Python's cycle collector kept out of the way of a study's trials."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While the trials run, what was loaded before them (Keras, MLflow, Optuna, the dataset,
    the stores: about 770,000 objects) is out of the collector's sight. Keras' `clear_session`
    collects fully before every trial, and walking those objects took 0.4 s each time (more
    under load); it now walks only what the trials made. Garbage made before is collected
    first, so none is kept for good; afterwards the collector sees everything again. Inside
    a freeze made elsewhere, nothing is changed."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
