"""A verdict on one of the paper's findings: `reproduced`, `not reproduced` or `inconclusive`,
with the numbers and the test that decided it (`colorize.stats`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from colorize import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """`finding`: the paper's claim; `word`: the verdict; `evidence`: numbers and test."""

    finding: str
    word: str
    evidence: str

    def sentence(self) -> str:
        return f"{self.finding}: {self.word}. {self.evidence}"


def word_of(interval: stats.Interval, expected_sign: int) -> str:
    """`reproduced` when the interval lies on the paper's side of zero, `not reproduced` on the
    other, `inconclusive` when it holds zero or too few observations back it."""
    sign = interval.sign()
    if sign == 0:
        return INCONCLUSIVE
    return REPRODUCED if sign == expected_sign else NOT_REPRODUCED


@dataclass
class Grouping:
    """How figures group trials: a legend title, a label per trial (indexed by trial number)
    and the labels in display order."""

    title: str
    labels: pd.Series
    order: list[str]
