"""MLflow records of a study: one experiment per stored study name, a parent run per engine and a
child run per trial, with the trial's params, per-epoch curves, final metrics, tags and artifacts.

All calls go through `MlflowClient` with explicit run ids, so nothing depends on a global
"active run", and a run's status always follows its trial (FINISHED, KILLED for pruned or
interrupted, FAILED with the reason). The trial engines are the truth: where a killed worker left
a run that disagrees with its trial, `settle_trial_run` makes it agree.

Each experiment is tagged as model training (`mlflow.experimentKind`), so the MLflow UI opens it on
its training runs rather than its GenAI view. With `system_metrics`, each trial's run gets MLflow's
system metrics (`system/cpu_utilization_percentage`, memory, disk, network and, where an NVIDIA GPU
is present, its utilisation and memory), sampled while the trial runs and once more as it ends.

The package, by what it tracks: `tracker` (the connection, the experiment, any run's metrics,
tags and artifacts), `study_run` (the parent run), `trial_runs` (a run per trial),
`model_versions` (the registry: one lookup of a version), `system_metrics`, `values` (how values
are written).
"""

from experiments.tracking.system_metrics import TrialSystemMetrics
from experiments.tracking.tracker import HTTP_RETRIES, SYSTEM_METRICS_PREFIX, Tracker
from experiments.tracking.trial_runs import trial_run_name

__all__ = [
    "HTTP_RETRIES",
    "SYSTEM_METRICS_PREFIX",
    "Tracker",
    "TrialSystemMetrics",
    "trial_run_name",
]
