import itertools

import keras
import numpy as np
import pytest

from colorize.model import InfeasibleArchitecture, build_model
from colorize.train import compact_input_model, compile_model

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`

PAPER_TABLE = [  # Fig. 5 of the report: (layer type, output shape, parameters)
    ("Conv2D", (128, 128, 64), 640),
    ("Conv2D", (128, 128, 128), 73856),
    ("Conv2D", (64, 64, 128), 147584),
    ("Conv2D", (64, 64, 256), 295168),
    ("Conv2D", (32, 32, 256), 590080),
    ("Conv2D", (32, 32, 512), 1180160),
    ("Conv2D", (32, 32, 512), 2359808),
    ("Conv2D", (32, 32, 256), 1179904),
    ("Conv2D", (32, 32, 128), 295040),
    ("UpSampling2D", (64, 64, 128), 0),
    ("Conv2D", (64, 64, 64), 73792),
    ("UpSampling2D", (128, 128, 64), 0),
    ("Conv2D", (128, 128, 32), 18464),
    ("Conv2D", (128, 128, 16), 4624),
    ("Conv2D", (128, 128, 2), 290),
    ("UpSampling2D", (256, 256, 2), 0),
]


def test_default_model_is_the_papers_network():
    model = build_model()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    table = [
        (type(lay).__name__, tuple(lay.output.shape[1:]), lay.count_params()) for lay in layers
    ]
    assert table == PAPER_TABLE
    assert model.count_params() == 6_219_410
    assert layers[-2].activation.__name__ == "tanh"


@pytest.mark.parametrize(
    "kernel_size,padding,strides", list(itertools.product((3, 5, 7), ("same", "valid"), (1, 2)))
)
def test_every_search_space_combination_builds_and_trains_a_step(kernel_size, padding, strides):
    keras.utils.clear_session()
    model = build_model(kernel_size, padding, strides, image_size=32)
    assert model.output_shape == (None, 32, 32, 2)
    fitted = compact_input_model(model)
    compile_model(fitted, "adam", 1e-3)
    fitted.run_eagerly = True  # one step: tracing a graph would cost 3 s; fits elsewhere use one
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    y = rng.integers(-64, 64, (2, 32, 32, 3), dtype=np.int8)  # a, b and the accuracy label
    y[..., 2] = y[..., 1] > y[..., 0]
    loss = fitted.train_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(loss)


def test_unet_has_skip_connections_and_matches_target_shape():
    model = build_model(image_size=32, architecture="unet")
    assert model.output_shape == (None, 32, 32, 2)
    concatenations = [lay for lay in model.layers if isinstance(lay, keras.layers.Concatenate)]
    assert len(concatenations) == 3
    fitted = compact_input_model(model, "centered")
    compile_model(fitted, "adamax", 1e-3)
    fitted.run_eagerly = True
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    y = rng.integers(-64, 64, (2, 32, 32, 3), dtype=np.int8)
    y[..., 2] = y[..., 1] > y[..., 0]
    assert np.isfinite(fitted.train_on_batch(x, y, return_dict=True)["loss"])


def test_infeasible_combinations_are_rejected_with_a_reason():
    with pytest.raises(InfeasibleArchitecture, match="smallest feature map"):
        build_model(7, "valid", 2, image_size=16)
    with pytest.raises(InfeasibleArchitecture, match="multiple of 8"):
        build_model(image_size=36)
    with pytest.raises(ValueError, match="padding must be one of"):
        build_model(padding="full")
