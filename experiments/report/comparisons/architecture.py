"""The paper's architecture space: kernel size x padding x strides, with the combinations that
could not be built and why.

The paper found these "mattered much less than the optimizer and the number of epochs" but gives
no numbers; a study that varies only the architecture cannot compare it with the optimizer or
epochs, so that finding's verdict here is `inconclusive` by construction, and says why.
"""

from __future__ import annotations

from experiments.report import paper
from experiments.report.comparisons.settings import (
    failure_table,
    settings_grouping,
    settings_table,
)
from experiments.report.tables import Table
from experiments.report.verdicts import INCONCLUSIVE, Grouping, Verdict


def verdicts(stored) -> list[Verdict]:
    return [
        Verdict(
            "Kernel size, padding and strides matter much less than the optimizer and epochs",
            INCONCLUSIVE,
            "This study varies only the architecture, so it cannot compare its effect with the "
            "optimizer's or the epoch budget's; the paper gives no numbers to compare with.",
        )
    ]


def tables(stored) -> list[Table]:
    table = settings_table(stored)
    table.notes += [paper.ARCHITECTURE_FINDING, *(v.sentence() for v in verdicts(stored))]
    failures = failure_table(stored)
    return [table, *([failures] if failures else [])]


def grouping(stored) -> Grouping:
    return settings_grouping(stored)
