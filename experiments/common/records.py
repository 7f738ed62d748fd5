"""The names of what a study records, shared by the writers (tracking, engines, study) and the
readers (report, UI): MLflow tags, metrics and artifacts, Optuna attributes, and the objectives a
study may optimize. Imports nothing heavy, so readers start fast.

Metrics are defined once, in `colorize.metrics.METRICS` (name, label, format, direction, whether a
study may optimize it, where it shows); what a trial logs and what a study may optimize are read
from there.
"""

from __future__ import annotations

from colorize.metrics import METRICS, PHOTO_METRICS

# --- MLflow tags ---------------------------------------------------------------------------------
ROLE_TAG = "colorize.role"  # "study" for the parent run, "trial" for each trial's run
STUDY_TAG = "colorize.study"  # the stored study name (the study's own, or `name=`)
DEFINITION_TAG = "colorize.definition"  # the study YAML it ran (studies/<definition>.yaml)
TRIAL_TAG = "colorize.trial"  # the trial's number
ENGINE_TAG = "colorize.engine"  # optuna or keras_tuner
FINGERPRINT_TAG = "colorize.fingerprint"  # hash of the result-changing settings
TRIAL_STATE_TAG = "trial.state"  # COMPLETE, PRUNED, FAIL (Optuna's words) or RUNNING
FAIL_REASON_TAG = "trial.fail_reason"
TRIAL_SECONDS_TAG = "trial.seconds"  # wall time of the trial itself (not of later logging)
EARLY_STOPPED_TAG = "early_stopped"
EARLY_STOPPED_EPOCH_TAG = "early_stopped_epoch"
BEST_EPOCH_TAG = "best_epoch"
RESUMED_FROM_TAG = "resumed_from_epoch"
TOTAL_TRIALS_TAG = "study.total_trials"  # the budget of the latest (re)start
BEST_MODEL_TRIAL_TAG = "best_model.trial"
BEST_MODEL_URI_TAG = "best_model.uri"
PARETO_TAG = "pareto_optimal"  # "true" on each Pareto-optimal trial's run, "false" on the others
PARETO_FRONT_TAG = "pareto.front"  # study run: the front's trial numbers, by the first objective
PARETO_MODELS_TAG = "pareto.registered"  # study run: the front whose models are registered
GIT_COMMIT_TAG = "git.commit"
BACKEND_TAG = "keras.backend"
VERSION_TAG_PREFIX = "version."
HOST_TAG_PREFIX = "host."
PARENT_RUN_TAG = "mlflow.parentRunId"
WORKER_TAG = "colorize.worker"  # a trial run's worker as JSON: host, hostname, pid, started

ROLE_STUDY, ROLE_TRIAL = "study", "trial"
DATASET_DIGEST_CHARS = 36  # what MLflow's dataset digest column holds
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}

# --- MLflow metrics ------------------------------------------------------------------------------
TRIAL_METRICS = (  # logged once at the end of a finished trial
    "best_val_loss",
    "best_val_accuracy",
    "final_accuracy",
    *PHOTO_METRICS,
    "best_epoch",
    "epochs_run",
    "num_params",
)
SKIPPED_METRICS = ("skipped_grayscale", "skipped_unreadable")

# --- artifacts -----------------------------------------------------------------------------------
CONFIG_ARTIFACT = "config.yaml"
STUDY_ARTIFACT = "study.yaml"
MANIFEST_ARTIFACT = "dataset_manifest.json"
FINGERPRINT_ARTIFACT = "fingerprint.json"
SAMPLES_ARTIFACT = "samples.png"
SAMPLE_ARRAYS_ARTIFACT = "samples.npz"  # the same photos as uint8 arrays: gray, predicted, truth
GRAY_ARTIFACT = "against_gray.json"  # the study's best model against gray on its test photos
CURVE_ARTIFACT = "learning_curve.png"

# --- Optuna attributes ---------------------------------------------------------------------------
RUN_ID_ATTR = "mlflow_run_id"
FAIL_REASON_ATTR = "fail_reason"
INTERRUPTED_ATTR = "interrupted"
RETRY_ATTR = "retry"  # failed by an unexpected error (not by its values): the next run retries it
SURPLUS_ATTR = "surplus"  # a grid trial asked for after the grid was done: not counted
DUPLICATE_ATTR = "duplicate"  # a sampled repeat of a finished parameter set: not run, not counted
FINGERPRINT_ATTR = "fingerprint"  # study attribute: the fingerprint's values
ENVIRONMENT_ATTR = "environment"  # study attribute: backend and package versions
STARTS_ATTR = "starts"  # study attribute: how many times a worker joined (seeds samplers)


# --- objectives ----------------------------------------------------------------------------------
OBJECTIVES = {metric.name: metric for metric in METRICS if metric.objective}
PER_EPOCH_OBJECTIVES = tuple(name for name, o in OBJECTIVES.items() if o.per_epoch)


def objectives_param(pairs: list[tuple[str, str]]) -> str:
    """A study's objectives as its run's `objectives` param: 'delta_e2000:minimize,...'."""
    return ",".join(f"{metric}:{direction}" for metric, direction in pairs)


def parse_objectives(text: str) -> list[tuple[str, str]]:
    """The `objectives` param back to (metric, direction) pairs."""
    return [tuple(part.split(":", 1)) for part in text.split(",") if ":" in part]


def objective_column(metric: str) -> str:
    """The trial metric holding a study objective's value."""
    return OBJECTIVES[metric].column if metric in OBJECTIVES else metric
