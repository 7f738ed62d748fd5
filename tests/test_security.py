"""Loading what users give us: models in Keras' safe mode, YAML without code."""

from __future__ import annotations

import keras
import pytest

from colorize.predict import ModelNotFound, load_model
from experiments.config import load_yaml
from experiments.errors import UsageError


def test_model_with_code_inside_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)  # arbitrary code in the file
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelNotFound, match="cannot load model"):
        load_model(path)


def test_yaml_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_yaml(path, "study")
