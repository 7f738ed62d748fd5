"""The heads' cards (`colorize.head_cards`): what the report and the plots read of a head
without Keras. Each claim must be judgeable: another known head, a metric the report has."""

from __future__ import annotations

import subprocess
import sys

import pytest

from colorize.choices import LOSSES
from colorize.head_cards import HEAD_CARDS

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def test_every_claim_names_another_head_and_a_report_metric():
    from experiments.report.tables import COLUMNS

    assert tuple(HEAD_CARDS) == LOSSES
    claims = [(name, claim) for name, card in HEAD_CARDS.items() for claim in card.claims]
    assert claims, "the losses report would have no verdict"
    for name, claim in claims:
        assert claim.over in HEAD_CARDS and claim.over != name, claim
        assert claim.metric in COLUMNS, claim


def test_each_head_labels_its_loss_from_its_card():
    from colorize.heads import HEADS

    assert list(HEADS) == list(HEAD_CARDS)
    for name, head in HEADS.items():
        assert head.loss_label == HEAD_CARDS[name].loss_label != ""


def test_the_report_reads_the_cards_without_keras():
    """The report's loss labels and verdicts need no deep-learning stack (seconds to import)."""
    code = (
        "import sys; import experiments.report.build, experiments.report.comparisons.losses; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
