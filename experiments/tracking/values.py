"""What the parts of `Tracker` share: the state they read, and how values are written into MLflow
(as text with any secret masked, errors as one line)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiments.common.redact import mask_secrets

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


class TrackerState:
    """What `Tracker` sets up and its parts read: the client, the study's experiment and names."""

    client: MlflowClient
    experiment_id: str
    tracking_uri: str
    study: str
    engine: str
    parent_run_id: str | None
    location: str


def first_line(error: Exception) -> str:
    """An error's first line, at most 300 characters, with any secret masked."""
    return mask_secrets((str(error).splitlines() or [type(error).__name__])[0][:300])


def shown(value: Any) -> str:
    """A param or tag value as stored: text, with any secret masked."""
    return mask_secrets(str(value))
