"""Colorize grayscale photos with a Keras network in CIELAB space (predict a/b from L).

The library knows nothing of studies or tracking: `experiments/` builds on it.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) hides our own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
