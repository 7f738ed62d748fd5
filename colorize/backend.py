"""Importing the Keras backend without its C++ start-up chatter.

TensorFlow prints CUDA probes and CPU-flag notes straight to file descriptor 2 while it loads,
before any Python logging setting applies. Command-line entry points import it through here so
users see their own messages; anything printed by a failed import is replayed.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_keras_quietly() -> None:
    """Import keras (and its backend) with native stderr output dropped unless the import fails."""
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
