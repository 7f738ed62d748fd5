"""The names a setting may take, in one place: optimizers (with the paper's alias), networks,
paddings, strides, L scalings and losses (the heads of `colorize.heads`). Keras-free, so
configuration checks, command-line help and the report read them without loading a
deep-learning stack.

To add an optimizer, add its Keras name here (and its display name); nothing else changes. To add
a head, add its card to `colorize.head_cards` and its module to `colorize/heads/`.
"""

from __future__ import annotations

from colorize.head_cards import HEAD_CARDS

# Keras optimizer names (`keras.optimizers.get`) -> display name.
OPTIMIZERS = {"adamax": "Adamax", "adam": "Adam", "rmsprop": "RMSprop"}
# The paper calls RMSprop "rmse"; its settings can be rerun as written.
OPTIMIZER_ALIASES = {"rmse": "rmsprop"}
ARCHITECTURES = ("paper", "unet")
PADDINGS = ("same", "valid")
STRIDES = (1, 2)
L_SCALINGS = ("unit", "centered", "raw")
# How the network encodes colour (a module of `colorize.heads` each): the paper's regression of
# a/b with MSE (the default), or Zhang et al.'s classification over quantized a/b bins.
LOSSES = tuple(HEAD_CARDS)
DEFAULT_LOSS = "mse"


def optimizer_names() -> tuple[str, ...]:
    """Every accepted spelling: the Keras names, then the aliases."""
    return (*OPTIMIZERS, *OPTIMIZER_ALIASES)


def resolve_optimizer(name: str) -> str:
    """Canonical optimizer name; raises ValueError listing the allowed names."""
    key = str(name).lower()
    key = OPTIMIZER_ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        allowed = ", ".join(
            (*OPTIMIZERS, *(f"{alias} (= {to})" for alias, to in OPTIMIZER_ALIASES.items()))
        )
        raise ValueError(f"unknown optimizer {name!r}; allowed: {allowed}")
    return key


def optimizer_display_name(name: str) -> str:
    """'adamax' -> 'Adamax', 'rmse' -> 'RMSprop'; unknown names are returned as they are."""
    key = OPTIMIZER_ALIASES.get(str(name).lower(), str(name).lower())
    return OPTIMIZERS.get(key, str(name))
