"""Importing the Keras backend without its C++ start-up chatter.

TensorFlow prints CUDA probes and CPU-flag notes straight to file descriptor 2 while it loads,
before any Python logging setting applies. Command-line entry points import it through here so
users see their own messages; anything printed by a failed import is replayed. A backend that
is unknown or not installed is a user's setting, reported as `BackendUnavailable` in one line.
"""

from __future__ import annotations

import os
import sys
import tempfile

BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


class BackendUnavailable(ImportError):
    """KERAS_BACKEND names an unknown backend, or one whose package is not installed."""


def _unavailable(error: Exception) -> BackendUnavailable | None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        return BackendUnavailable(
            f"KERAS_BACKEND={backend} is not a Keras backend; allowed: {', '.join(BACKENDS)}"
        )
    missing = getattr(error, "name", None)
    if isinstance(error, ModuleNotFoundError) and missing and missing.split(".")[0] == backend:
        return BackendUnavailable(
            f"KERAS_BACKEND={backend} needs the {backend} package, which is not installed "
            f"(pip install {backend})"
        )
    return None


def import_keras_quietly() -> None:
    """Import keras (and its backend) with native stderr output dropped unless the import fails.

    Raises:
        BackendUnavailable: KERAS_BACKEND is unknown or its package is missing.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
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
