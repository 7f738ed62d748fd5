"""The `classification` head (Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016):
a/b is a class among the quantized in-gamut bins of `colorize.gamut` (229 bins, grid step 10),
and the network predicts a distribution over them.

- Output: one logit per bin (the last convolution has Q channels, no activation).
- Targets: each pixel's a/b (the int8 a/b of the compact batches) is soft-encoded on its
  `NEIGHBOURS` (5) nearest bin centres, weighted by a Gaussian of the distance (sigma 5), the
  weights summing to 1. This runs on the device, in the loss, with `keras.ops` only.
- Loss: multinomial cross-entropy against the soft target, each pixel weighted by the class
  rebalancing weight of its nearest bin (`class_weights`): the training data's bin distribution,
  smoothed by a Gaussian (sigma 5) and mixed with the uniform one by `rebalance` (lambda,
  default 0.5), inverted, and normalized so the mean weight of a training pixel is 1.
  `rebalance=1` weighs every colour alike (no rebalancing); `rebalance=0` is the full inverse
  frequency.
- Decoding: the annealed mean (`AnnealedMean`): the mean of the bin centres under the
  distribution sharpened by `temperature` (default 0.38; 1 is the plain mean, towards 0 the
  mode), inside the saved model, which therefore returns a/b / 128 like the `mse` head's.
- Accuracy: the paper's (is b > a?) on the decoded a/b.
"""

from __future__ import annotations

import keras
import numpy as np

from colorize import gamut, lab
from colorize.heads.base import Head

SIGMA = 5.0  # LAB units, the soft encoding's and the prior smoothing's Gaussian
NEIGHBOURS = 5  # bins a target is soft-encoded on
DEFAULT_TEMPERATURE = 0.38
DEFAULT_REBALANCE = 0.5
_MIN_PROBABILITY = 1e-6  # floor of the mixed prior, so rebalance=0 never divides by zero


def check_temperature(temperature: float) -> float:
    temperature = float(temperature)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, not {temperature!r}")
    return temperature


def check_rebalance(rebalance: float) -> float:
    rebalance = float(rebalance)
    if not 0.0 <= rebalance <= 1.0:
        raise ValueError(f"rebalance must lie in [0, 1], not {rebalance!r}")
    return rebalance


def smooth_distribution(distribution: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """A bin distribution smoothed by a Gaussian of `sigma` LAB units over the bin centres
    (each bin's mass is spread over its neighbours; the total stays 1)."""
    centres = gamut.bin_centres().astype(np.float64)
    squared = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-squared / (2.0 * sigma**2))
    kernel /= kernel.sum(axis=0, keepdims=True)  # column r spreads bin r's mass
    return kernel @ np.asarray(distribution, dtype=np.float64)


def class_weights(
    distribution: np.ndarray, rebalance: float = DEFAULT_REBALANCE, sigma: float = SIGMA
) -> np.ndarray:
    """Zhang et al.'s class rebalancing weights (float64 (Q,)).

    w is proportional to 1 / ((1 - rebalance) * smoothed + rebalance / Q), with `smoothed` the
    Gaussian-smoothed `distribution`, normalized so that sum(distribution * w) = 1: under the
    empirical distribution the mean weight is 1. `rebalance=1` gives every bin weight 1.

    Args:
        distribution: the training data's bin distribution (`colorize.gamut.bin_distribution`).
        rebalance: lambda, the share of the uniform distribution in the mix.
    """
    distribution = np.asarray(distribution, dtype=np.float64)
    rebalance = check_rebalance(rebalance)
    mixed = (1.0 - rebalance) * smooth_distribution(distribution, sigma)
    mixed += rebalance / len(distribution)
    weights = 1.0 / np.maximum(mixed, _MIN_PROBABILITY)
    return weights / np.sum(distribution * weights)


def _centres_tensor(centres) -> object:
    return keras.ops.convert_to_tensor(np.asarray(centres, dtype=np.float32))


def soft_encode(ab, centres, sigma: float = SIGMA, neighbours: int = NEIGHBOURS):
    """The soft encoding of a/b (..., 2) in LAB units: the indices of the `neighbours` nearest
    bins (nearest first) and their Gaussian weights, summing to 1, each (..., neighbours).
    `keras.ops` only, so it runs on the device of any backend."""
    ab = keras.ops.cast(ab, "float32")
    centres = _centres_tensor(centres)
    # |ab - c|^2 = |ab|^2 - 2 ab.c + |c|^2, one matmul instead of a (..., Q, 2) difference array
    squared = (
        keras.ops.sum(keras.ops.square(ab), axis=-1, keepdims=True)
        - 2.0 * keras.ops.matmul(ab, keras.ops.transpose(centres))
        + keras.ops.sum(keras.ops.square(centres), axis=-1)
    )
    negative, indices = keras.ops.top_k(-squared, k=neighbours, sorted=True)
    # softmax of -d^2 / (2 sigma^2): the Gaussian weights, normalized without underflow
    weights = keras.ops.softmax(negative / (2.0 * sigma**2), axis=-1)
    return indices, weights


def soft_targets(ab, centres, sigma: float = SIGMA, neighbours: int = NEIGHBOURS):
    """The dense soft-encoded target (..., Q) of a/b (..., 2): `soft_encode` spread on Q bins."""
    indices, weights = soft_encode(ab, centres, sigma, neighbours)
    one_hot = keras.ops.one_hot(indices, len(np.asarray(centres)), dtype="float32")
    return keras.ops.sum(one_hot * weights[..., None], axis=-2)


def annealed_mean(logits, centres, temperature: float = DEFAULT_TEMPERATURE):
    """a/b (..., 2) in LAB units: the mean of the bin centres under softmax(logits / T), i.e. the
    predicted distribution raised to 1/T and renormalized (T=1: the mean; T -> 0: the mode)."""
    logits = keras.ops.cast(logits, "float32")
    probabilities = keras.ops.softmax(logits / temperature, axis=-1)
    return keras.ops.matmul(probabilities, _centres_tensor(centres))


@keras.saving.register_keras_serializable(package="colorize")
class AnnealedMean(keras.layers.Layer):
    """Bin logits (..., Q) -> the annealed-mean a/b / 128 (..., 2): the classification head's
    decoding inside the saved model. Holds its bin centres, so a saved model is self-contained."""

    def __init__(self, centres, temperature: float = DEFAULT_TEMPERATURE, **kwargs):
        kwargs.setdefault("dtype", "float32")  # decode in float32 under mixed precision too
        super().__init__(**kwargs)
        self.centres = np.asarray(centres, dtype=np.float32).reshape(-1, 2)
        self.temperature = check_temperature(temperature)

    def call(self, logits):
        return annealed_mean(logits, self.centres, self.temperature) / lab.AB_SCALE

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return {
            **super().get_config(),
            "centres": self.centres.tolist(),
            "temperature": self.temperature,
        }


@keras.saving.register_keras_serializable(package="colorize")
class SoftEncodedCrossEntropy(keras.losses.Loss):
    """Class-rebalanced multinomial cross-entropy against the soft-encoded int8 a/b of the
    compact targets ([a, b, label], (N, H, W, 3)); predictions are bin logits (N, H, W, Q).
    A pixel's loss is weighted by `class_weights` of its nearest bin."""

    def __init__(
        self,
        centres,
        class_weights,
        sigma: float = SIGMA,
        neighbours: int = NEIGHBOURS,
        name: str = "soft_encoded_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.centres = np.asarray(centres, dtype=np.float32).reshape(-1, 2)
        self.class_weights = np.asarray(class_weights, dtype=np.float32).reshape(-1)
        if len(self.class_weights) != len(self.centres):
            raise ValueError(
                f"{len(self.class_weights)} class weights for {len(self.centres)} bins"
            )
        self.sigma, self.neighbours = float(sigma), int(neighbours)

    def call(self, y_true, y_pred):
        indices, weights = soft_encode(y_true[..., :2], self.centres, self.sigma, self.neighbours)
        log_probabilities = keras.ops.log_softmax(keras.ops.cast(y_pred, "float32"), axis=-1)
        picked = keras.ops.take_along_axis(log_probabilities, indices, axis=-1)
        cross_entropy = -keras.ops.sum(weights * picked, axis=-1)
        pixel_weight = keras.ops.take(
            keras.ops.convert_to_tensor(self.class_weights), indices[..., 0]
        )
        return pixel_weight * cross_entropy

    def get_config(self):
        return {
            **super().get_config(),
            "centres": self.centres.tolist(),
            "class_weights": self.class_weights.tolist(),
            "sigma": self.sigma,
            "neighbours": self.neighbours,
        }


@keras.saving.register_keras_serializable(package="colorize")
def decoded_label_accuracy(y_true, y_pred, centres, temperature=DEFAULT_TEMPERATURE):
    """The paper's accuracy of bin logits: is b > a in their annealed-mean a/b exactly where it
    is in the truth (the exact label, the target's third channel)?"""
    ab = annealed_mean(y_pred, centres, temperature)
    predicted = keras.ops.cast(ab[..., 1] > ab[..., 0], "float32")
    truth = keras.ops.cast(y_true[..., 2], "float32")
    return keras.ops.cast(keras.ops.equal(predicted, truth), "float32")


def _decoder(model: keras.Model) -> AnnealedMean:
    found = [layer for layer in model.layers if isinstance(layer, AnnealedMean)]
    if len(found) != 1:
        raise ValueError(f"model {model.name} has no annealed-mean decoding layer")
    return found[0]


class ClassificationHead(Head):
    name = "classification"
    activation = None  # logits
    # rebalance: share of the uniform distribution in the class weights (1: none);
    # temperature: the decoded a/b's annealed mean (1: the mean; towards 0: the mode)
    options = {"rebalance": DEFAULT_REBALANCE, "temperature": DEFAULT_TEMPERATURE}

    def channels(self) -> int:
        return len(gamut.bin_centres())

    def decode(self, raw, *, temperature: float = DEFAULT_TEMPERATURE, **options):
        return AnnealedMean(gamut.bin_centres(), temperature, name="annealed_mean")(raw)

    def owns(self, model: keras.Model) -> bool:
        return any(isinstance(layer, AnnealedMean) for layer in model.layers)

    def training_model(self, model: keras.Model) -> keras.Model:
        return keras.Model(model.inputs, _decoder(model).input, name=f"{model.name}_logits")

    def loss(self, train_ab, *, rebalance: float = DEFAULT_REBALANCE, **options):
        weights = class_weights(gamut.bin_distribution(train_ab), rebalance)
        return SoftEncodedCrossEntropy(gamut.bin_centres(), weights)

    def metrics(self, model: keras.Model):
        decoder = _decoder(model)
        return [
            keras.metrics.MeanMetricWrapper(
                decoded_label_accuracy,
                name="accuracy",
                centres=decoder.centres.tolist(),
                temperature=decoder.temperature,
            )
        ]

    def settings(self, model: keras.Model) -> dict:
        decoder = _decoder(model)
        return {"temperature": decoder.temperature, "bins": len(decoder.centres)}


HEAD = ClassificationHead()
