"""Any other study (e.g. the TPE search): one row per combination of settings, the best against
the runner-up over seeds, and the trials that could not be built or trained."""

from __future__ import annotations

from experiments.report.comparisons.settings import (
    failure_table,
    settings_grouping,
    settings_table,
)
from experiments.report.tables import Table
from experiments.report.verdicts import Grouping, Verdict


def verdicts(stored) -> list[Verdict]:
    return []  # no finding of the paper to test; the table's note ranks the best setting


def tables(stored) -> list[Table]:
    failures = failure_table(stored)
    return [settings_table(stored), *([failures] if failures else [])]


def grouping(stored) -> Grouping:
    return settings_grouping(stored)
