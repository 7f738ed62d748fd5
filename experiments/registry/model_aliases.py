"""Which registered model is which: the aliases a finished study gives its registered model.

- `champion`: the study's best trial (also `models:/<study>/latest` when it was registered last);
- `<key>-<value>`: the best trial of each group the study compares, one group per value of each
  setting it chooses among (seeds aside), e.g. `models:/losses@loss-mse` and
  `models:/losses@loss-classification`, `models:/optimizers@optimizer-adam`.

Settings searched over a range (a learning rate drawn from an interval) form no groups: every
trial would be its own.
"""

from __future__ import annotations

import re

from experiments.analysis.ranking import group_bests

CHAMPION = "champion"
_NOT_IN_ALIAS = re.compile(r"[^a-z0-9_-]+")  # MLflow aliases take letters, digits, _ and -


def alias_of(name: str, value) -> str:
    """The alias of a group: `<name>-<value>`, lower case, other characters as `-`."""
    return _NOT_IN_ALIAS.sub("-", f"{name}-{value}".lower()).strip("-")


def group_aliases(rows: list[dict], spec) -> dict[str, int]:
    """{alias: best trial number} of every group the study compares (`group_bests`)."""
    return {
        alias_of(name, value): number for (name, value), number in group_bests(rows, spec).items()
    }
