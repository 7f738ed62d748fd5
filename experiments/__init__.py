"""The study harness: turns study definitions (studies/*.yaml) into tracked trials and reports."""

import os

# MLflow and Optuna reach out to the network for telemetry; runs are offline and local by default.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
