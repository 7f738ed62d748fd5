"""The heads: soft encoding, class rebalancing and annealed-mean decoding of the classification
head, and a classification model trained, checkpointed, saved, reloaded and used to colorize."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec

import keras
import numpy as np
import pytest
from PIL import Image

from colorize import gamut, lab
from colorize.heads import HEADS, get_head, head_of
from colorize.heads.classification import (
    SIGMA,
    AnnealedMean,
    SoftEncodedCrossEntropy,
    annealed_mean,
    class_weights,
    soft_encode,
    soft_targets,
)
from colorize.model import build_model
from colorize.predict import load_model, predict_ab, save_model
from colorize.train import compact_input_model, compile_model, train
from tests.conftest import write_photo
from tests.needs import untested_backend
from tests.studies_helpers import native_log_lines, run_colorize

TINY = 16


@pytest.fixture(scope="module")
def tiny_data():
    from colorize.datasets import DatasetSpec, load_dataset

    return load_dataset(DatasetSpec(image_size=TINY, crops_per_photo=2, val_photos=3))


def _numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def test_heads_are_found_by_name():
    assert set(HEADS) == {"mse", "classification"}
    assert get_head("mse").channels() == 2
    assert get_head("classification").channels() == len(gamut.bin_centres())
    with pytest.raises(ValueError, match="loss must be one of mse, classification"):
        get_head("l1")


def test_soft_encoding_is_a_gaussian_on_the_five_nearest_bins():
    rng = np.random.default_rng(0)
    centres = gamut.bin_centres()
    picks = centres[rng.integers(0, len(centres), 40)]
    ab = np.clip(picks + rng.integers(-7, 8, picks.shape), -128, 127).astype(np.int8)
    ab = ab.reshape(2, 4, 5, 2)
    dense = _numpy(soft_targets(ab, centres))
    assert dense.shape == (2, 4, 5, len(centres))
    assert np.allclose(dense.sum(-1), 1, atol=1e-6)
    assert np.all((dense > 0).sum(-1) == 5)
    assert np.array_equal(dense.argmax(-1), gamut.nearest_bin(ab))
    # the weights are exp(-d^2 / 2 sigma^2) of the five nearest, normalized
    flat_ab, flat = ab.reshape(-1, 2).astype(np.float64), dense.reshape(-1, len(centres))
    for pixel, row in zip(flat_ab, flat, strict=True):
        distances = ((centres - pixel) ** 2).sum(-1)
        nearest = np.argsort(distances, kind="stable")[:5]
        gauss = np.exp(-distances[nearest] / (2 * SIGMA**2))
        assert np.allclose(row[nearest], gauss / gauss.sum(), atol=1e-5)
    indices, weights = soft_encode(ab, centres)
    assert _numpy(indices).shape == (2, 4, 5, 5)
    assert np.all(np.diff(_numpy(weights), axis=-1) <= 1e-7)  # nearest first, weighs most


def test_loss_is_the_rebalanced_cross_entropy_against_the_soft_target():
    rng = np.random.default_rng(1)
    centres = gamut.bin_centres()
    weights = rng.uniform(0.5, 2.0, len(centres))
    ab = rng.integers(-60, 61, (2, 3, 3, 2)).astype(np.int8)
    label = (ab[..., 1:] > ab[..., :1]).astype(np.int8)
    targets = np.concatenate([ab, label], axis=-1)
    logits = rng.normal(size=(2, 3, 3, len(centres))).astype(np.float32)
    loss = SoftEncodedCrossEntropy(centres, weights)
    got = float(_numpy(loss(targets, logits)))
    soft = _numpy(soft_targets(ab, centres))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = np.mean(weights[gamut.nearest_bin(ab)] * -(soft * log_p).sum(-1))
    assert got == pytest.approx(expected, rel=1e-5)
    again = SoftEncodedCrossEntropy.from_config(loss.get_config())
    assert float(_numpy(again(targets, logits))) == pytest.approx(got, rel=1e-6)


def test_class_weights_have_mean_one_and_lambda_one_is_uniform(smoke_data):
    distribution = gamut.bin_distribution(smoke_data.train_ab)
    nearest = gamut.nearest_bin(smoke_data.train_ab)
    for rebalance in (0.0, 0.5, 1.0):
        weights = class_weights(distribution, rebalance)
        assert np.all(np.isfinite(weights)) and np.all(weights > 0)
        assert np.sum(distribution * weights) == pytest.approx(1.0)
        assert weights[nearest].mean() == pytest.approx(1.0)  # a training pixel's mean weight
    assert np.allclose(class_weights(distribution, 1.0), 1.0)
    half = class_weights(distribution, 0.5)
    common, rare = np.argmax(distribution), np.argmin(np.where(distribution > 0, distribution, 1))
    assert half[rare] > half[common]  # rare colours count more
    assert class_weights(distribution, 0.0)[common] < half[common]
    with pytest.raises(ValueError, match="rebalance must lie in"):
        class_weights(distribution, 1.5)


def test_annealed_mean_is_the_expectation_at_one_and_the_mode_when_cold():
    rng = np.random.default_rng(2)
    centres = gamut.bin_centres()
    logits = rng.normal(scale=2.0, size=(3, 2, len(centres))).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expectation = probabilities @ centres
    assert np.allclose(_numpy(annealed_mean(logits, centres, 1.0)), expectation, atol=1e-3)
    mode = centres[logits.argmax(-1)]
    assert np.allclose(_numpy(annealed_mean(logits, centres, 0.01)), mode, atol=1e-2)
    layer = AnnealedMean(centres, 0.38)
    decoded = _numpy(layer(logits))
    assert np.allclose(decoded * lab.AB_SCALE, _numpy(annealed_mean(logits, centres, 0.38)))
    assert AnnealedMean.from_config(layer.get_config()).temperature == 0.38
    with pytest.raises(ValueError, match="temperature must be positive"):
        AnnealedMean(centres, 0.0)


@pytest.mark.parametrize("architecture", ["paper", "unet"])
def test_batch_norm_follows_every_hidden_convolution(architecture):
    def count(model, kind):
        return sum(isinstance(layer, kind) for layer in model.layers)

    plain = build_model(image_size=TINY, architecture=architecture)
    assert count(plain, keras.layers.BatchNormalization) == 0
    for loss in ("mse", "classification"):
        model = build_model(image_size=TINY, architecture=architecture, loss=loss, batch_norm=True)
        convolutions = count(model, keras.layers.Conv2D)
        assert count(model, keras.layers.BatchNormalization) == convolutions - 1
        assert model.output_shape == (None, TINY, TINY, 2)
    assert build_model().count_params() == 6_219_410  # the paper's, unchanged by default


def test_a_classification_model_decodes_to_a_b(tiny_data):
    model = build_model(image_size=TINY, loss="classification")
    assert head_of(model).name == "classification"
    assert head_of(build_model(image_size=TINY)).name == "mse"
    logits_model = get_head("classification").training_model(model)
    assert logits_model.output_shape == (None, TINY, TINY, len(gamut.bin_centres()))
    assert logits_model.count_params() == model.count_params()  # weights shared, none added
    ab = predict_ab(model, lab.decode_l(tiny_data.val_l[:2]), "unit")
    assert ab.shape == (2, TINY, TINY, 2) and np.abs(ab).max() <= 100 + 1e-3
    with pytest.raises(ValueError, match="built for loss 'classification', not 'mse'"):
        train(model, tiny_data, loss="mse", epochs=1)


@pytest.fixture(scope="module")
def classification_run(tiny_data, tmp_path_factory):
    """A classification model fitted for 2 epochs with checkpoints, then resumed to 3, saved."""
    folder = tmp_path_factory.mktemp("classification")
    keras.utils.set_random_seed(0)
    first = train(
        build_model(image_size=TINY, loss="classification", temperature=0.5),
        tiny_data,
        loss="classification",
        rebalance=0.5,
        epochs=2,
        patience=5,
        batch_size=8,
        checkpoint_dir=folder / "checkpoints",
    )
    model = build_model(image_size=TINY, loss="classification", temperature=0.5)
    again = train(
        model,
        tiny_data,
        rebalance=0.5,
        epochs=3,
        patience=5,
        batch_size=8,
        checkpoint_dir=folder / "checkpoints",
    )
    path = save_model(
        model, folder / "model.keras", l_scaling="unit", head_options={"rebalance": 0.5}
    )
    return first, again, model, path


def test_classification_trains_and_resumes_from_its_checkpoint(classification_run):
    first, again, _, _ = classification_run
    assert set(first.history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(np.isfinite(first.history["loss"]))
    assert again.resumed_from_epoch == 2 and again.epochs_run == 3
    assert again.history["val_loss"][:2] == first.history["val_loss"]


def test_classification_accuracy_is_the_papers_on_the_decoded_a_b(classification_run, tiny_data):
    _, _, model, _ = classification_run
    head = head_of(model)
    fitted = compact_input_model(head.training_model(model))
    compile_model(
        fitted, loss=head.loss(tiny_data.train_ab), metrics=head.metrics(model)
    )  # fmt: skip
    targets = np.asarray(tiny_data.val_target)
    scores = fitted.evaluate(tiny_data.val_l, targets, verbose=0, return_dict=True)
    ab = predict_ab(model, lab.decode_l(tiny_data.val_l), "unit")
    expected = np.mean((ab[..., 1] > ab[..., 0]) == (targets[..., 2] == 1))
    assert scores["accuracy"] == pytest.approx(expected, abs=1e-3)


def test_saved_classification_model_reloads_safely_and_returns_a_b(classification_run, tiny_data):
    _, _, model, path = classification_run
    settings = json.loads(path.with_suffix(".json").read_text())
    assert settings == {
        "l_scaling": "unit",
        "loss": "classification",
        "temperature": 0.5,
        "bins": len(gamut.bin_centres()),
        "rebalance": 0.5,
    }
    keras.utils.clear_session()
    loaded, loaded_settings = load_model(path)  # safe mode
    assert loaded_settings["loss"] == "classification"
    lightness = lab.decode_l(tiny_data.val_l[:3])
    ab = predict_ab(loaded, lightness, "unit")
    assert ab.shape == (3, TINY, TINY, 2) and np.all(np.abs(ab) <= 100 + 1e-3)
    assert np.allclose(ab, predict_ab(model, lightness, "unit"), atol=1e-4)


def test_models_saved_without_a_head_load_as_mse(tmp_path):
    path = save_model(build_model(image_size=TINY), tmp_path / "old.keras")
    settings = json.loads(path.with_suffix(".json").read_text())
    assert settings == {"l_scaling": "unit", "loss": "mse"}
    path.with_suffix(".json").write_text(json.dumps({"l_scaling": "unit"}))
    _, loaded = load_model(path)
    assert loaded["loss"] == "mse"


def test_colorize_and_evaluate_commands_run_a_classification_model(
    classification_run, tmp_path, embedded_photos
):
    _, _, _, path = classification_run
    inputs = tmp_path / "in"
    write_photo(inputs / "colour.jpg", embedded_photos["skimage:coffee"], size=48)
    result = run_colorize(
        "--model",
        str(path),
        "--input",
        str(inputs),
        "--output",
        str(tmp_path / "out"),
        fresh=True,  # its console as a user sees it, native libraries' lines included
    )
    assert result.returncode == 0, result.stderr
    assert not native_log_lines(result.stderr)
    out = Image.open(tmp_path / "out" / "colour.png")
    assert out.size == Image.open(inputs / "colour.jpg").size and out.mode == "RGB"
    scored = run_colorize("evaluate", "--model", str(path), "--photos", str(inputs), "--json")
    assert scored.returncode == 0, scored.stderr
    assert len(json.loads(scored.stdout)["photos"]) == 1


BACKEND_SCRIPT = """
import keras, numpy as np
from colorize import gamut
from colorize.heads import get_head
from colorize.heads.classification import SoftEncodedCrossEntropy, soft_targets
from colorize.train import compact_input_model, compile_model, set_precision
rng = np.random.default_rng(0)
centres = gamut.bin_centres()
ab = rng.integers(-60, 61, (4, 8, 8, 2)).astype(np.int8)
targets = np.concatenate([ab, (ab[..., 1:] > ab[..., :1]).astype(np.int8)], axis=-1)
logits = rng.normal(size=(4, 8, 8, len(centres))).astype(np.float32)
weights = rng.uniform(0.5, 2.0, len(centres))
got = float(keras.ops.convert_to_numpy(SoftEncodedCrossEntropy(centres, weights)(targets, logits)))
soft = keras.ops.convert_to_numpy(soft_targets(ab, centres))
log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
expected = np.mean(weights[gamut.nearest_bin(ab)] * -(soft * log_p).sum(-1))
assert abs(got - expected) < 1e-4 * expected, (got, expected)
# a compiled fit of a one-layer classification network, in mixed precision
set_precision(True)
head = get_head("classification")
inputs = keras.Input((8, 8, 1))
model = keras.Model(inputs, head.decode(keras.layers.Conv2D(head.channels(), 1)(inputs)))
fitted = compact_input_model(head.training_model(model))
compile_model(fitted, loss=head.loss(ab), metrics=head.metrics(model))
l_uint8 = rng.integers(0, 256, (4, 8, 8, 1)).astype(np.uint8)
history = fitted.fit(l_uint8, targets, epochs=2, batch_size=2, verbose=0).history
assert np.isfinite(history["loss"]).all() and "accuracy" in history, history
print("ok", keras.backend.backend())
"""


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            name, marks=[] if find_spec(name) else untested_backend(name, "not installed")
        )
        for name in ("jax", "torch")
    ],
)
def test_the_classification_loss_runs_compiled_on_the_other_backends(backend):
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend},
        timeout=300,
    )
    assert result.returncode == 0 and f"ok {backend}" in result.stdout, result.stderr[-3000:]


def test_rebalanced_auc_weighs_each_colour_bin_alike():
    from colorize.metrics import ab_error_auc, rebalanced_ab_error_auc

    # 9 gray pixels predicted exactly, 1 red pixel predicted 40 units off
    true_ab = np.zeros((1, 10, 2))
    true_ab[0, 9] = (60, 40)
    pred_ab = true_ab.copy()
    pred_ab[0, 9] = (60, 0)
    red_auc = np.mean(np.arange(151) >= 40)
    assert ab_error_auc(true_ab, pred_ab) == pytest.approx(0.9 + 0.1 * red_auc)
    # two bins present: the mean of their AuCs, 1 for gray and red_auc for red
    assert rebalanced_ab_error_auc(true_ab, pred_ab) == pytest.approx((1 + red_auc) / 2)
    assert rebalanced_ab_error_auc(true_ab, true_ab) == 1.0
    one_bin = np.zeros((3, 2))
    guess = np.array([[0, 0], [3, 4], [30, 40]], float)
    assert rebalanced_ab_error_auc(one_bin, guess) == pytest.approx(ab_error_auc(one_bin, guess))


def test_the_served_model_colorizes_with_a_classification_model(classification_run):
    """The serving wrapper in-process, on a model saved here (MLflow's own server serving the
    registered classification model: tests/test_losses.py)."""
    pytest.importorskip("mlflow")
    from types import SimpleNamespace

    import pandas as pd

    from experiments.registry.serving import ColorizeModel, decode_photo, encode_png

    _, _, _, path = classification_run
    served = ColorizeModel()
    artifacts = {"keras_model": str(path), "settings": str(path.with_suffix(".json"))}
    served.load_context(SimpleNamespace(artifacts=artifacts))
    ramp = np.linspace(0, 255, 20 * 30, dtype=np.uint8).reshape(20, 30)
    answer = served.predict(None, pd.DataFrame({"image": [encode_png(np.stack([ramp] * 3, -1))]}))
    assert decode_photo(answer["image"][0]).shape == (20, 30, 3)
