import shutil

import numpy as np
import pytest

from colorize import lab
from colorize.choices import resolve_optimizer
from colorize.metrics import ab_error_auc, colorfulness, colorization_metrics
from colorize.model import build_model
from colorize.predict import predict_lab
from colorize.train import (
    TrainingDiverged,
    compact_input_model,
    compile_model,
    make_optimizer,
    train,
)


def test_smoke_training_lowers_validation_loss(smoke_data):
    import keras

    keras.utils.set_random_seed(0)  # the initial weights too, whatever ran before
    model = build_model(image_size=32)
    result = train(
        model, smoke_data, optimizer="adam", learning_rate=1e-3, batch_size=8, epochs=4, seed=0
    )
    assert set(result.history) >= {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"}
    assert min(result.history["val_loss"][1:]) < result.history["val_loss"][0]
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1


@pytest.mark.parametrize("l_scaling", lab.L_SCALINGS)
def test_compact_batches_scaled_in_the_model_equal_the_float_path(smoke_data, l_scaling):
    model = build_model(image_size=32)
    fitted = compact_input_model(model, l_scaling)
    compile_model(fitted)
    l_uint8, ab_int8 = np.asarray(smoke_data.val_l[:4]), np.asarray(smoke_data.val_ab[:4])
    label = np.asarray(smoke_data.val_label[:4]).view(np.uint8)
    inputs = lab.scale_l(lab.decode_l(l_uint8), l_scaling)
    predicted = model.predict(inputs, verbose=0)
    assert np.allclose(fitted.predict(l_uint8, verbose=0), predicted, atol=1e-6)
    # Loss on int8 targets is that of the float targets a/b / 128; accuracy uses the label.
    target = lab.ab_to_target(lab.decode_ab(ab_int8))
    targets = np.asarray(smoke_data.val_target[:4])
    scores = fitted.evaluate(l_uint8, targets, verbose=0, return_dict=True)
    assert np.isclose(scores["loss"], np.mean((predicted - target) ** 2), rtol=1e-4)
    same_larger = np.argmax(predicted, -1) == label[..., 0]
    assert np.isclose(scores["accuracy"], same_larger.mean(), atol=1e-6)


def test_accuracy_labels_match_a_float64_reference_where_int8_rounding_does_not(
    embedded_photos,
):
    """The paper's accuracy is the share of pixels whose predicted argmax over (a, b) is the
    true one; the stored label must be the float64 truth's, which int8 a/b would flip."""
    from skimage import color

    from colorize.datasets.builder import convert

    photos = [embedded_photos[name][:256, :256] for name in sorted(embedded_photos)]
    photos = [p for p in photos if p.shape == (256, 256, 3)]
    converted = convert(photos)
    stored_ab, stored_label = converted["target"][..., :2], converted["target"][..., 2:]
    reference = [color.rgb2lab(p.astype(np.float64) / 255.0)[..., 1:] for p in photos]
    exact = np.stack([lab.accuracy_label(ab) for ab in reference])
    from_int8 = lab.accuracy_label(stored_ab.astype(np.float64))
    label_mismatch = np.mean(stored_label != exact)
    int8_mismatch = np.mean(from_int8 != exact)
    assert label_mismatch < 1e-4, label_mismatch  # float32 ties only
    assert int8_mismatch > 100 * max(label_mismatch, 1e-6)  # what storing int8 labels would cost
    # the metric itself, on a prediction that is the float64 truth: 100 % only with the label
    predicted = np.concatenate(reference).reshape(len(photos), 256, 256, 2)
    model_out = np.asarray(predicted / 128.0, np.float32)
    targets = converted["target"]
    import keras

    from colorize.train import label_accuracy

    got = float(keras.ops.mean(label_accuracy(targets, model_out)))
    assert got > 1 - 1e-4


def test_early_stopping_stops_and_restores_best_weights(smoke_data):
    import keras

    from colorize.batches import LabBatches, even_batch_size
    from colorize.heads import head_of

    class SpoiledSnapshots(keras.callbacks.Callback):
        """Spoils the weights after the first epoch (noise on every trainable weight at the
        start of each later epoch, so validation loss must get worse and early stopping has a
        best epoch to go back to), and keeps the weights at the end of each epoch as the fit
        left them: taken after the epoch's last batch, since Keras's early stopping restores
        the best weights in its own epoch-end hook, which may run before this one."""

        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(0)
            self.epoch = 0
            self.latest: list[np.ndarray] = []
            self.weights: list[list[np.ndarray]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch >= 1 and batch == 0:
                for variable in self.model.trainable_weights:
                    value = keras.ops.convert_to_numpy(variable)
                    variable.assign(
                        value + self.rng.normal(0, 0.5, value.shape).astype(value.dtype)
                    )

        def on_train_batch_end(self, batch, logs=None):
            self.latest = [w.copy() for w in self.model.get_weights()]

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append(self.latest)

    model = build_model(image_size=32)
    snapshots = SpoiledSnapshots()
    result = train(  # eager: no graph to trace, the same stopping and restoring
        model, smoke_data, epochs=8, patience=1, callbacks=[snapshots], run_eagerly=True
    )
    assert result.stopped_early and result.epochs_run < 8
    assert result.best_epoch < result.epochs_run
    best = result.best_val_loss
    assert best == min(result.history["val_loss"])
    assert result.best_epoch == result.history["val_loss"].index(best) + 1  # the first lowest
    # the model holds the best epoch's weights, not the last epoch's
    restored = compact_input_model(model, "unit")
    best_weights = snapshots.weights[result.best_epoch - 1]
    assert all(
        np.array_equal(w, b) for w, b in zip(restored.get_weights(), best_weights, strict=True)
    )
    last_weights = snapshots.weights[-1]
    assert not all(np.array_equal(w, b) for w, b in zip(best_weights, last_weights, strict=True))
    # and its validation loss, measured here with the head's loss, is the best epoch's
    restored.compile(loss=head_of(model).loss(smoke_data.train_ab))
    val_size = even_batch_size(len(smoke_data.val_l), 16)
    measured = restored.evaluate(
        LabBatches(smoke_data.val_l, smoke_data.val_target, val_size), verbose=0
    )
    assert measured == pytest.approx(best, rel=1e-3)


def test_optimizers_by_name_and_the_papers_alias():
    assert resolve_optimizer("rmse") == "rmsprop"
    assert type(make_optimizer("Adamax", 0.01)).__name__ == "Adamax"
    with pytest.raises(
        ValueError, match="unknown optimizer 'sgdx'; allowed: adamax, adam, rmsprop"
    ):
        resolve_optimizer("sgdx")


def test_diverging_loss_raises(smoke_data):
    model = build_model(image_size=32, strides=1)
    with pytest.raises(TrainingDiverged, match="NaN|infinite"):
        train(model, smoke_data, optimizer="adam", learning_rate=1e12, epochs=3, run_eagerly=True)


def test_metrics_are_perfect_for_the_truth_and_worse_for_gray(smoke_data):
    truth = lab.join_lab(lab.decode_l(smoke_data.val_l), lab.decode_ab(smoke_data.val_ab))
    gray = truth.copy()
    gray[..., 1:] = 0
    perfect, grey = colorization_metrics(truth, truth), colorization_metrics(truth, gray)
    assert perfect["delta_e2000"] == 0 and perfect["ab_auc"] == 1.0 and perfect["ssim"] > 0.999
    assert grey["delta_e2000"] > 1 and grey["ab_auc"] < 1 and grey["psnr"] < 60
    assert grey["colorfulness_pred"] < grey["colorfulness_true"]


def test_auc_and_colourfulness_by_hand():
    true_ab = np.zeros((1, 4, 2))
    pred_ab = np.array([[[0, 0], [0, 0], [3, 4], [30, 40]]], dtype=float)
    # errors 0, 0, 5, 50: within t for t in 0..150 -> mean share
    expected = np.mean([np.mean(np.array([0, 0, 5, 50]) <= t) for t in range(151)])
    assert ab_error_auc(true_ab, pred_ab) == pytest.approx(expected)
    assert colorfulness(np.full((4, 4, 3), 0.5)) == 0


def test_prediction_has_the_data_shape(smoke_data):
    model = build_model(image_size=32)
    predicted = predict_lab(model, smoke_data.val_l, "unit")
    assert predicted.shape == smoke_data.val_l.shape[:3] + (3,)


def test_fit_continues_from_its_checkpoint(smoke_data, tmp_path):
    first = train(
        build_model(image_size=32), smoke_data, epochs=2, patience=5, checkpoint_dir=tmp_path
    )
    assert (tmp_path / "state.json").exists() and first.resumed_from_epoch == 0
    again = train(
        build_model(image_size=32), smoke_data, epochs=4, patience=5, checkpoint_dir=tmp_path
    )
    assert again.resumed_from_epoch == 2 and again.epochs_run == 4
    assert again.history["val_loss"][:2] == first.history["val_loss"]


def test_fit_continues_from_a_checkpoint_of_the_float_input_model(smoke_data, tmp_path):
    """Checkpoints written before fits took compact batches hold the bare float-input model."""
    import keras

    from colorize import checkpoint

    old = build_model(image_size=32)
    old.compile(
        optimizer=make_optimizer("adamax", 1e-3),
        loss="mse",
        metrics=["accuracy"],
        run_eagerly=True,
    )
    inputs = lab.scale_l(lab.decode_l(smoke_data.train_l))
    old.fit(inputs, lab.ab_to_target(lab.decode_ab(smoke_data.train_ab)), epochs=1, verbose=0)
    stopper = checkpoint.ResumableEarlyStopping(monitor="val_loss", restore_best_weights=True)
    stopper.set_model(old)
    stopper.on_train_begin()
    stopper.on_epoch_end(0, {"val_loss": 0.5})
    checkpoint.save(tmp_path, old, 1, {"loss": [0.5], "val_loss": [0.5]}, stopper)
    steps = int(keras.ops.convert_to_numpy(old.optimizer.iterations))

    seen = {}

    class FirstWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["weights"] = self.model.get_weights()
            seen["steps"] = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    resumed = train(
        build_model(image_size=32), smoke_data, epochs=2, checkpoint_dir=tmp_path,
        callbacks=[FirstWeights()], run_eagerly=True,
    )  # fmt: skip
    assert resumed.resumed_from_epoch == 1 and resumed.history["loss"][0] == 0.5
    assert seen["steps"] == steps > 0  # the optimizer's state came along
    for got, saved in zip(seen["weights"], old.get_weights(), strict=True):
        assert np.array_equal(got, saved)


def _flip_bytes(path, size: int) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(255 - b for b in data[middle : middle + size])
    path.write_bytes(bytes(data))


DAMAGES = {  # how a checkpoint's files are found damaged after they were written
    "model cut short": lambda d: (m := next(d.glob("model-*.keras"))).write_bytes(
        m.read_bytes()[:1000]
    ),
    "model bits flipped": lambda d: _flip_bytes(next(d.glob("model-*.keras")), 4096),
    "best weights bits flipped": lambda d: _flip_bytes(next(d.glob("best-*.npz")), 64),
    "state not an object": lambda d: (d / "state.json").write_text("[]"),
    "state of other fields": lambda d: (d / "state.json").write_text('{"epochs_done": "2"}'),
    "state not text": lambda d: (d / "state.json").write_bytes(b"\xff\xfe\x00"),
}


@pytest.fixture(scope="module")
def two_epoch_checkpoint(smoke_data, tmp_path_factory):
    """A checkpoint folder after a 2-epoch fit, made once: each case damages its own copy."""
    folder = tmp_path_factory.mktemp("checkpoint")
    train(
        build_model(image_size=32), smoke_data, epochs=2, checkpoint_dir=folder, run_eagerly=True
    )
    return folder


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_unreadable_checkpoint_is_ignored_not_trusted(
    smoke_data, two_epoch_checkpoint, tmp_path, caplog, damage
):
    """A damaged checkpoint is removed with a warning and the fit starts over; never an
    error."""
    shutil.copytree(two_epoch_checkpoint, tmp_path, dirs_exist_ok=True)
    DAMAGES[damage](tmp_path)
    result = train(
        build_model(image_size=32), smoke_data, epochs=1, checkpoint_dir=tmp_path, run_eagerly=True
    )  # what is read back is the same compiled or not: no graph to trace for it
    assert result.resumed_from_epoch == 0 and result.epochs_run == 1
    assert "ignoring unreadable checkpoint" in caplog.text and "the fit starts over" in caplog.text


def test_mixed_precision_trains_with_float32_weights(smoke_data):
    from colorize.train import set_precision

    set_precision(True)
    try:
        model = build_model(image_size=32)
        result = train(model, smoke_data, optimizer="adam", epochs=1)
        assert model.layers[1].compute_dtype == "bfloat16"
        assert model.layers[1].kernel.dtype == "float32"
        assert np.isfinite(result.history["val_loss"][0])
    finally:
        set_precision(False)


CHECKPOINT_UNDER_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from pathlib import Path
from colorize import checkpoint
from colorize.model import build_model
from colorize.train import compact_input_model, compile_model

model = compact_input_model(build_model(image_size=16))
compile_model(model)
stopper = checkpoint.ResumableEarlyStopping(monitor="val_loss", restore_best_weights=True)
stopper.set_model(model)
stopper.on_train_begin()
stopper.on_epoch_end(0, {"val_loss": 0.5})
folder = Path(sys.argv[1])
first = checkpoint.save(folder, model, 1, {"loss": [0.5]}, stopper, tag="A")
size = (folder / "model-0001.keras").stat().st_size
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, hard))
second = checkpoint.save(folder, model, 2, {"loss": [0.5, 0.4]}, stopper, tag="A")
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
loaded = checkpoint.load(folder, "A")
print(json.dumps({"first": first, "second": second, "epochs": loaded.epochs_done,
                  "other_tag": checkpoint.load(folder, "B") is None,
                  "files": sorted(p.name for p in folder.iterdir())}))
"""


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one_in_use(tmp_path):
    """A full disk (here a file size limit) while saving: the save fails with a warning, the
    previous checkpoint stays whole and is the one loaded; one of other settings never is."""
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", CHECKPOINT_UNDER_A_FILE_SIZE_LIMIT, str(tmp_path / "ckpt")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["first"] is True and found["second"] is False
    assert found["epochs"] == 1 and found["other_tag"] is True
    assert found["files"] == ["best-0001.npz", "model-0001.keras", "state.json"]
    assert "checkpoint after epoch 2 not written" in result.stderr
