"""The study harness: turns study definitions (studies/*.yaml) into tracked trials and reports."""

import os

# MLflow and Optuna reach out to the network for telemetry; runs are offline and local by default.
# A user who set either variable (to allow it, or to refuse it) has chosen: that choice stands.
if not any(name in os.environ for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")):
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
