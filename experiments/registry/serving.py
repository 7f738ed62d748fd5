"""The registered model as MLflow serves it: a photo in, the colorized photo out.

`mlflow models serve -m models:/<study>/latest --env-manager local` answers POSTs to
`/invocations` with a table of base64-encoded photos (PNG or JPEG) in the column `image`, and
returns each colorized at its own size as a base64 PNG in the column `image`. The model's `.keras`
file and its settings travel with it as artifacts, so `python -m colorize --model models:/...`
finds and uses the same file.
"""

from __future__ import annotations

import base64
import io

import mlflow.pyfunc
import numpy as np
import pandas as pd

COLUMN = "image"


def encode_png(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_photo(text: str) -> np.ndarray:
    """A base64 PNG/JPEG (any mode) as RGB uint8, read like a photo from disk."""
    from colorize import images

    return images.read_rgb(io.BytesIO(base64.b64decode(text)), name="the posted photo")


class ColorizeModel(mlflow.pyfunc.PythonModel):
    """Colorizes base64 photos with the `.keras` network it carries."""

    def load_context(self, context) -> None:
        import json

        from colorize.backend import import_keras_quietly

        import_keras_quietly()
        import keras

        from colorize.model import ReflectionPadding2D  # noqa: F401  (registers the layer)

        self.model = keras.saving.load_model(
            context.artifacts["keras_model"], safe_mode=True, compile=False
        )
        with open(context.artifacts["settings"]) as handle:
            self.l_scaling = json.load(handle).get("l_scaling", "unit")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from colorize.predict import colorize_rgb

        photos = [decode_photo(text) for text in model_input[COLUMN]]
        return pd.DataFrame(
            {COLUMN: [encode_png(colorize_rgb(self.model, rgb, self.l_scaling)) for rgb in photos]}
        )


def input_example(size: int = 32) -> pd.DataFrame:
    """A small gray gradient photo, as the request's table carries it."""
    ramp = np.linspace(0, 255, size * size, dtype=np.uint8).reshape(size, size)
    return pd.DataFrame({COLUMN: [encode_png(np.stack([ramp] * 3, axis=-1))]})
