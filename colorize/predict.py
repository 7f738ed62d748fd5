"""Colorizing photos with a trained network, and saving/loading models with their settings.

A photo is colorized at its own resolution: its L channel is resized to the network's input size,
a/b are predicted there, upsampled back and joined with the full-resolution L.

A model is a `.keras` file with a `<name>.json` beside it holding the settings it was trained with
(`l_scaling`, and `loss`: the head, with its options, e.g. the classification head's
`temperature` and bin count). Whatever the head, the saved model takes scaled L and returns
a/b / 128, so colorizing never depends on it; a model saved before heads existed is an `mse`
model. Other references (`runs:/<id>/model`, `models:/<name>/latest`) are resolved by
plug-ins registered under the entry-point group `colorize.model_resolvers`, keyed by URI scheme:
each is called with the URI and a scratch folder to download into, which is removed once the model
is loaded (a 25 MB copy per load would otherwise pile up in the temp folder).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

import keras
import numpy as np

from colorize import images, lab
from colorize.choices import DEFAULT_LOSS
from colorize.heads import head_of
from colorize.model import ReflectionPadding2D  # noqa: F401  (registers the custom layers)

RESOLVER_GROUP = "colorize.model_resolvers"


class ModelNotFound(ValueError):
    """The model reference does not name a loadable model."""


def settings_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(
    model: keras.Model,
    path: str | Path,
    *,
    l_scaling: str = "unit",
    head_options: dict | None = None,
) -> Path:
    """Save `model` (an inference model, as `build_model` makes it) as `.keras` plus its settings
    sidecar; returns the model path.

    The sidecar holds `l_scaling`, the head (`loss`) and the options its model carries (for
    `classification`: `temperature`, `bins`), plus `head_options`, training options to record
    with it (e.g. `{"rebalance": 0.5}`).
    """
    path = Path(path).with_suffix(".keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    # An uncompiled twin sharing the weights: the file holds no optimizer state (a third of it).
    keras.Model(model.input, model.output, name=model.name).save(path)
    head = head_of(model)
    settings = {"l_scaling": lab.check_l_scaling(l_scaling), "loss": head.name}
    settings |= head.settings(model) | dict(head_options or {})
    settings_path(path).write_text(json.dumps(settings))
    return path


def _resolve(reference: str, scratch: Path) -> Path:
    path = Path(reference).expanduser()
    if path.exists():
        return path
    match = re.match(r"^([a-z][a-z0-9+.-]*):/", reference)
    if not match:
        raise ModelNotFound(f"model not found: {reference} (expected a .keras file or a URI)")
    scheme = match.group(1)
    resolvers = {ep.name: ep for ep in entry_points(group=RESOLVER_GROUP)}
    if scheme not in resolvers:
        known = ", ".join(f"{name}:/" for name in sorted(resolvers)) or "none installed"
        raise ModelNotFound(f"no resolver for model URI {reference} (known: {known})")
    try:
        return Path(resolvers[scheme].load()(reference, scratch))
    except Exception as error:  # a resolver's own failure (unreachable store, unknown model)
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelNotFound(message) from None


def load_model(reference: str | Path) -> tuple[keras.Model, dict]:
    """Load a model (file path or URI) in Keras' safe mode; returns it with its settings."""
    with tempfile.TemporaryDirectory(prefix="colorize-model-") as scratch:
        return _load(_resolve(str(reference), Path(scratch)))


def _load(path: Path) -> tuple[keras.Model, dict]:
    if path.is_dir():
        found = sorted(path.rglob("*.keras"))
        if not found:
            raise ModelNotFound(f"no .keras model inside {path}")
        path = found[0]
    if path.suffix != ".keras":
        raise ModelNotFound(f"not a .keras model file: {path}")
    settings = read_settings(settings_path(path))
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # cut short, bits flipped, not a model: zip, HDF5, Keras errors
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise ModelNotFound(f"cannot load model {path}: {first[:300]}") from error
    return model, settings


def read_settings(sidecar: Path) -> dict:
    """The settings saved beside a model (defaults where there is no file, as before it was
    written).

    Raises:
        ModelNotFound: the file is damaged or holds settings this code does not know.
    """
    from colorize.choices import L_SCALINGS, LOSSES

    if not sidecar.exists():
        settings = {}
    else:
        try:
            settings = json.loads(sidecar.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ModelNotFound(
                f"the settings beside the model, {sidecar}, cannot be read ({error})"
            ) from None
        if not isinstance(settings, dict):
            raise ModelNotFound(f"the settings beside the model, {sidecar}, are not an object")
    settings.setdefault("l_scaling", "unit")
    settings.setdefault("loss", DEFAULT_LOSS)  # saved before heads existed: the paper's
    for key, allowed in (("l_scaling", L_SCALINGS), ("loss", LOSSES)):
        if settings[key] not in allowed:
            raise ModelNotFound(
                f"the settings beside the model, {sidecar}, hold {key}={settings[key]!r}; "
                f"allowed: {', '.join(allowed)}"
            )
    return settings


def predict_ab(
    model: keras.Model, lightness: np.ndarray, l_scaling: str, batch_size: int = 16
) -> np.ndarray:
    """a/b in LAB units (N, H, W, 2) for L in [0, 100] (N, H, W, 1) at the model's input size
    (any head: the model returns a/b / 128).

    Calls the model batch by batch, not `model.predict`: that traces a new function for every
    new model, which a study makes once a trial (and TensorFlow warns about the retracing)."""
    inputs = lab.scale_l(lightness, l_scaling)
    # Models saved with their input as a one-element list want it called that way.
    as_list = isinstance(getattr(model, "_inputs_struct", None), list | tuple)
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        outputs.append(keras.ops.convert_to_numpy(model([batch] if as_list else batch)))
    return lab.target_to_ab(np.concatenate(outputs).astype(np.float32))


def predict_lab(model: keras.Model, l_encoded: np.ndarray, l_scaling: str) -> np.ndarray:
    """Predicted LAB (N, H, W, 3) for compact uint8 L (as held by `LabData`)."""
    lightness = lab.decode_l(l_encoded)
    return lab.join_lab(lightness, predict_ab(model, lightness, l_scaling))


def colorize_lab(model: keras.Model, rgb: np.ndarray, l_scaling: str = "unit") -> np.ndarray:
    """Colorize one photo (RGB or gray-as-RGB uint8, any size): LAB float32 of its size, its own
    L with the predicted a/b (predicted at the model's size and upsampled)."""
    height, width = rgb.shape[:2]
    size_h, size_w = model.input_shape[1:3]
    full_l = lab.rgb_to_lab(rgb)[..., 0]
    small_rgb = images.resize(rgb, size_h, size_w)
    small_l = lab.rgb_to_lab(small_rgb)[..., :1]
    ab = predict_ab(model, small_l[None], l_scaling)[0]
    # Upsample a/b per channel in float (Pillow's "F" mode keeps the sign and precision).
    from PIL import Image

    full_ab = np.stack(
        [
            np.asarray(
                Image.fromarray(ab[..., c].astype(np.float32)).resize(
                    (width, height), Image.Resampling.BICUBIC
                )
            )
            for c in range(2)
        ],
        axis=-1,
    )
    return lab.join_lab(full_l, full_ab)


def colorize_rgb(model: keras.Model, rgb: np.ndarray, l_scaling: str = "unit") -> np.ndarray:
    """Colorize one photo (RGB or gray-as-RGB uint8, any size); returns RGB uint8 of its size."""
    return lab.lab_to_rgb_uint8(colorize_lab(model, rgb, l_scaling))


def output_name(source: Path, input_root: Path) -> Path:
    """Relative output path (PNG) for `source`; never escapes the output folder."""
    # Lexical, not resolved: a symbolic link inside the input folder must not lead outside.
    relative = Path(os.path.relpath(os.path.abspath(source), os.path.abspath(input_root)))
    parts = [part for part in relative.with_suffix(".png").parts if part not in ("", ".", "..")]
    return Path(*parts) if parts else Path("image.png")
