"""What each head says about itself, Keras-free: its name as a report shows it, what its training
loss measures, and what it claims to do better than another head.

The heads themselves (`colorize.heads`, one module each) build networks and need Keras; the
configuration, the command-line help and the report read only these cards. The losses report
asks the cards what to compare: each claim becomes one verdict, judged on the claim's metric.
To add a head: its card here and its module in `colorize/heads/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """A head's claim over another head, judged on a metric the two share.

    Attributes:
        metric: a report metric (`experiments.report.tables.COLUMNS`), e.g. "delta_e2000".
        higher: whether the claim is that this head's value is the higher one.
        over: the other head's name.
        finding: the claim as a sentence, as the report's verdict names it.
    """

    metric: str
    higher: bool
    over: str
    finding: str


@dataclass(frozen=True)
class HeadCard:
    """A head as people read about it.

    Attributes:
        name: the head's name (`loss=<name>`).
        shown: its name in tables and verdicts.
        loss_label: what its training loss measures, as plots label their loss axis.
        claims: what it claims over other heads (the losses report's verdicts).
    """

    name: str
    shown: str
    loss_label: str
    claims: tuple[Claim, ...] = ()


# In the order reports list them: the paper's head first.
HEAD_CARDS: dict[str, HeadCard] = {
    card.name: card
    for card in (
        HeadCard(
            "mse",
            "regression (mse)",
            "MSE on a/b / 128",
            # A mean-squared error is minimized by the mean colour, which CIEDE2000 also favours.
            (Claim("delta_e2000", False, "classification", "Regression has the lower ΔE2000"),),
        ),
        HeadCard(
            "classification",
            "classification",
            "soft-encoded cross-entropy (nats)",
            # Zhang, Isola & Efros 2016: rebalanced classes paint rarer, more saturated colours.
            (
                Claim(
                    "colorfulness_pred",
                    True,
                    "mse",
                    "Classification with rebalancing colours more vividly than regression",
                ),
            ),
        ),
    )
}
