"""The registered model answers MLflow's own server: a real `mlflow models serve` on a free
loopback port, a real photo posted as base64, the colorized photo back at the input's size."""

from __future__ import annotations

import base64
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from tests.servers import free_port, running


def serve_and_colorize(model_uri: str, runs_dir: Path, photo: Image.Image) -> list[Image.Image]:
    """Serve `model_uri` of the study store in `runs_dir` with `mlflow models serve` on a free
    loopback port, post `photo` (as a colour JPEG and a gray PNG), and return the colorized
    photos the server sent back."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow if mlflow.exists() else shutil.which("mlflow")), "models", "serve",
               "-m", model_uri, "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}"}
    payload = []
    for image, kind in ((photo, "JPEG"), (photo.convert("L"), "PNG")):
        buffer = io.BytesIO()
        image.save(buffer, format=kind)
        payload.append({"image": base64.b64encode(buffer.getvalue()).decode("ascii")})
    with running(command, f"http://127.0.0.1:{port}/ping", env, timeout=180):
        answer = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": payload},
            timeout=120,
        )
    assert answer.status_code == 200, answer.text[:500]
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2
    return [Image.open(io.BytesIO(base64.b64decode(p["image"]))) for p in predictions]


def assert_colorized(colorized: list[Image.Image], size: tuple[int, int]) -> None:
    for image in colorized:
        assert image.format == "PNG" and image.size == size
        chroma = np.ptp(np.asarray(image.convert("RGB"), dtype=int), axis=-1)
        assert chroma.mean() > 0.5  # colour where the gray input had none


def test_the_registered_model_colorizes_a_posted_photo(smoke_optimizers_study, embedded_photos):
    photo = Image.fromarray(embedded_photos["skimage:coffee"]).resize((90, 60))
    colorized = serve_and_colorize("models:/optimizers/latest", smoke_optimizers_study[0], photo)
    assert_colorized(colorized, (90, 60))
