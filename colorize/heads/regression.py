"""The paper's head, `mse`: two tanh channels that are a/b / 128, trained with the mean squared
error. It tends to paint a brownish gray, the mean of the colours an object could have; the
`classification` head is the remedy. Its inference output is the network's output itself.
"""

from __future__ import annotations

import keras

from colorize import lab
from colorize.heads.base import Head


@keras.saving.register_keras_serializable(package="colorize")
def compact_target_mse(y_true, y_pred):
    """MSE on a/b / 128, with the target given as int8 [a, b(, label)] (the compact batches)."""
    target = keras.ops.cast(y_true[..., :2], y_pred.dtype) / lab.AB_SCALE
    return keras.ops.mean(keras.ops.square(y_pred - target), axis=-1)


@keras.saving.register_keras_serializable(package="colorize")
def label_accuracy(y_true, y_pred):
    """The paper's accuracy (Keras' categorical accuracy over the a/b outputs: is the larger
    predicted channel the larger true one?), against the exact label in the target's third
    channel (1 where the unrounded b > a), not the int8-rounded a/b, whose ties would flip it."""
    predicted = keras.ops.cast(y_pred[..., 1] > y_pred[..., 0], "float32")
    truth = keras.ops.cast(y_true[..., 2], "float32")
    return keras.ops.cast(keras.ops.equal(predicted, truth), "float32")


class RegressionHead(Head):
    name = "mse"
    activation = "tanh"

    def channels(self) -> int:
        return 2

    def decode(self, raw, **options):
        return raw

    def owns(self, model: keras.Model) -> bool:
        return model.output_shape[-1] == 2

    def loss(self, train_ab=None, **options):
        return compact_target_mse

    def metrics(self, model: keras.Model):
        return [keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")]


HEAD = RegressionHead()
