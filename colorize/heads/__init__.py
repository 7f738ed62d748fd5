"""How the network encodes colour, one head per output representation, found by name.

Each module of this package that defines `HEAD` (a `colorize.heads.base.Head`) is a head; its
name must have a card in `colorize.head_cards` (its name in reports, what its loss measures, what
it claims over other heads). To add one: a module here and its card there.

- `mse` (`regression.py`, the paper's and the default): two tanh channels, a/b / 128, MSE loss.
- `classification` (`classification.py`, Zhang et al. 2016): logits over the in-gamut a/b bins,
  class-rebalanced soft-encoded cross-entropy, annealed-mean decoding inside the saved model.

Importing this package registers every head's serializable layers, losses and metrics, so a
saved model of any head loads in Keras' safe mode (`colorize.model` imports it).
"""

from __future__ import annotations

import importlib
import pkgutil

from colorize.choices import DEFAULT_LOSS, LOSSES
from colorize.heads.base import Head


def _discover() -> dict[str, Head]:
    found: dict[str, Head] = {}
    for module in pkgutil.iter_modules(__path__):
        head = getattr(importlib.import_module(f"{__name__}.{module.name}"), "HEAD", None)
        if isinstance(head, Head):
            found[head.name] = head
    if set(found) != set(LOSSES):
        raise ImportError(
            f"heads found ({', '.join(sorted(found))}) differ from colorize.choices.LOSSES "
            f"({', '.join(LOSSES)})"
        )
    return {name: found[name] for name in LOSSES}


HEADS: dict[str, Head] = _discover()
# Every head's options: `build_model` and `train` take each by name and pass them all on.
HEAD_OPTIONS: dict[str, float] = {
    name: default for head in HEADS.values() for name, default in head.options.items()
}


def check_options(options: dict) -> None:
    """Raise TypeError (as for an unknown keyword) for an option no head declares."""
    unknown = sorted(set(options) - set(HEAD_OPTIONS))
    if unknown:
        allowed = ", ".join(HEAD_OPTIONS) or "none"
        raise TypeError(f"unknown head option {', '.join(unknown)}; heads take: {allowed}")


def get_head(name: str) -> Head:
    """The head called `name`; raises ValueError listing the allowed names."""
    if name not in HEADS:
        raise ValueError(f"loss must be one of {', '.join(HEADS)}, not {name!r}")
    return HEADS[name]


def head_of(model) -> Head:
    """The head an inference model was built with (a model no other head claims is `mse`'s)."""
    for name, head in HEADS.items():
        if name != DEFAULT_LOSS and head.owns(model):
            return head
    return HEADS[DEFAULT_LOSS]


__all__ = ["HEADS", "HEAD_OPTIONS", "Head", "check_options", "get_head", "head_of"]
