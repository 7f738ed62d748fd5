"""What a head is: how the network encodes colour, from its last layer to the a/b it returns.

A head owns four things, and nothing else in the library knows them:

- the output layer: how many channels the last convolution has and its activation
  (`channels`, `activation`), and what turns that output into a/b inside the saved model
  (`decode`);
- the network that is fitted (`training_model`: L -> what the loss sees, sharing the weights);
- the training loss and the paper's accuracy on that output (`loss`, `metrics`), both fed the
  compact int8 [a, b, label] targets of `colorize.batches`;
- what is written beside a saved model (`settings`);
- its own options (`options`: each name and default), which `build_model` and `train` pass on
  whole to `decode` and `loss`; each takes the ones it uses. Adding one touches the head and
  the study schema (`experiments/settings/config.py`, `feeds={"head": ...}`) only.

Whatever the head, the inference model (`colorize.model.build_model`'s result, what
`colorize.predict.save_model` saves) takes scaled L and returns a/b / 128 (`colorize.lab.AB_SCALE`),
so colorizing, evaluating, serving and resuming never ask which head trained a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from colorize.head_cards import HEAD_CARDS


class Head:
    """One output representation of colour. Subclasses set `name` and override what differs."""

    name: str = ""
    activation: str | None = None  # of the last convolution
    options: dict[str, float] = {}  # the head's own settings and their defaults

    @property
    def loss_label(self) -> str:
        """What its training loss measures, as plots label it (from its card)."""
        return HEAD_CARDS[self.name].loss_label

    def channels(self) -> int:
        """Channels of the last convolution."""
        raise NotImplementedError

    def decode(self, raw, **options):
        """The inference output (a/b / 128) from the last convolution's output `raw`; `options`
        are every head's options (this head's own among them)."""
        raise NotImplementedError

    def owns(self, model: keras.Model) -> bool:
        """Whether `model` (an inference model) was built with this head."""
        raise NotImplementedError

    def training_model(self, model: keras.Model) -> keras.Model:
        """The network the loss is applied to (shares `model`'s weights)."""
        return model

    def loss(self, train_ab: np.ndarray, **options):
        """The training loss on compact int8 [a, b, label] targets; `train_ab` is the training
        a/b (int8 (N, S, S, 2)), for heads that weigh colours by how often they occur."""
        raise NotImplementedError

    def metrics(self, model: keras.Model) -> Sequence[keras.metrics.Metric]:
        """The paper's accuracy (named `accuracy`) on the training model's output."""
        raise NotImplementedError

    def settings(self, model: keras.Model) -> dict:
        """The head's options to record beside a saved model (besides its name)."""
        return {}
