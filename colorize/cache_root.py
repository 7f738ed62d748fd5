"""Where the project keeps what it downloads or builds once per machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$COLORIZE_CACHE`, default `~/.cache/colorize-studies`."""
    base = os.environ.get("COLORIZE_CACHE") or Path.home() / ".cache" / "colorize-studies"
    return Path(base).expanduser()
