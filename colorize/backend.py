"""Importing the Keras backend without its C++ start-up chatter.

TensorFlow prints CUDA probes and CPU-flag notes straight to file descriptor 2 while it loads,
before any Python logging setting applies. Command-line entry points import it through here so
users see their own messages; anything printed by a failed import is replayed. A backend that
is unknown or not installed is a user's setting, reported as `BackendUnavailable` in one line.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib.util import find_spec

BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


class BackendUnavailable(ImportError):
    """KERAS_BACKEND names an unknown backend, or one whose package is not installed."""


def _chosen_backend() -> str:
    """The backend Keras chose (KERAS_BACKEND, else ~/.keras/keras.json), even after it failed."""
    config = sys.modules.get("keras.src.backend.config")
    if config is not None:
        return config.backend()
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def _unavailable(error: Exception) -> BackendUnavailable | None:
    backend = _chosen_backend()
    if backend not in BACKENDS:
        return BackendUnavailable(
            f"Keras backend {backend!r} (KERAS_BACKEND or ~/.keras/keras.json) is not a Keras "
            f"backend; allowed: {', '.join(BACKENDS)}"
        )
    if isinstance(error, ModuleNotFoundError) and find_spec(backend) is None:
        return BackendUnavailable(
            f"Keras backend {backend!r} needs the {backend} package, which is not installed "
            f"(pip install {backend})"
        )
    return None


def _preload_tensorflow(backend: str) -> None:
    """On another backend, `keras.utils.set_random_seed` still imports TensorFlow where it is
    installed, later and loudly; import it now, while stderr is quiet."""
    if backend != "tensorflow" and find_spec("tensorflow") is not None:
        with suppress(ImportError):  # a broken TensorFlow: Keras goes on without it, as we do
            import tensorflow  # noqa: F401


@contextmanager
def collector_paused() -> Iterator[None]:
    """For imports: they make about a million objects and no garbage, and the cycle collector
    would walk the growing heap again and again while they do (a fifth of their seconds).
    Handed back as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_keras_quietly(*, will_seed: bool = False) -> None:
    """Import keras (and its backend) with native stderr output dropped unless the import fails.

    `will_seed`: the command trains (and seeds), so on another backend TensorFlow, where
    installed, is imported now too; commands that only predict are spared its start-up.

    Raises:
        BackendUnavailable: KERAS_BACKEND is unknown or its package is missing.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, collector_paused():
        os.dup2(sink.fileno(), 2)
        try:
            import keras

            if will_seed:
                _preload_tensorflow(keras.backend.backend())
        except Exception as error:
            unavailable = _unavailable(error)
            if unavailable is not None:
                raise unavailable from None
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
