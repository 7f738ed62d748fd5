"""Colorize grayscale photos with a Keras network in CIELAB space (predict a/b from L).

The library knows nothing of studies or tracking: `experiments/` builds on it.
"""

import os

# TensorFlow's C++ log lines (a failed CUDA probe on machines without a GPU, oneDNN fallback
# notes; some at ERROR level) hide our own messages, and real failures raise Python exceptions
# anyway. TF_CPP_MIN_LOG_LEVEL=0 in the environment shows them all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
