"""MLflow's usage telemetry, as the user chose it.

MLflow sends anonymous usage events (which APIs and UI pages are used, its version, the
platform; never parameters, metrics, data or artifacts) unless told not to. Here it is off unless
the user says otherwise: where neither `MLFLOW_DISABLE_TELEMETRY` nor `DO_NOT_TRACK` is set,
importing `experiments` turns it off (both set). A user who set either has chosen: allowed with
`MLFLOW_DISABLE_TELEMETRY=false` (or `DO_NOT_TRACK=0`), refused with `MLFLOW_DISABLE_TELEMETRY=true`
or `DO_NOT_TRACK=1`. MLflow itself reads `DO_NOT_TRACK` only when it is `true`, so
`honour_opt_out` turns either opt-out, in any usual spelling (1, true, yes, on), into
`MLFLOW_DISABLE_TELEMETRY=true` in this process's environment: the MLflow client of a study and
the servers that `experiments.ui` starts both inherit it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OPT_OUT_VARIABLES = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
_YES = {"1", "true", "yes", "on"}


def opted_out(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the user turned telemetry off with either variable."""
    environ = os.environ if environ is None else environ
    return any(environ.get(name, "").strip().lower() in _YES for name in OPT_OUT_VARIABLES)


def honour_opt_out(environ: MutableMapping[str, str] | None = None) -> bool:
    """Spell the user's opt-out the way MLflow reads it; returns whether telemetry is off."""
    environ = os.environ if environ is None else environ
    if not opted_out(environ):
        return False
    environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return True
