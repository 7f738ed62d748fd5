"""Where a study ran: the code's git commit, the host, and the package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "optuna",
    "keras-tuner",
    "mlflow",
    "scikit-image",
    "numpy",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of `names` (missing packages are left out)."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host_tags() -> dict[str, str]:
    """The machine a study ran on: platform, Python, CPU count and any NVIDIA GPUs."""
    tags = {
        "host.platform": platform.platform(),
        "host.machine": platform.machine(),
        "host.python": platform.python_version(),
        "host.cpu_count": str(os.cpu_count() or ""),
    }
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        gpus = []
    tags["host.gpu"] = ", ".join(gpus) if gpus else "none"
    return tags
