import numpy as np
from PIL import Image

from colorize.model import build_model
from colorize.predict import output_name, save_model
from colorize.train import train
from tests.conftest import write_photo
from tests.studies_helpers import native_log_lines, run_colorize


def test_colorize_writes_outputs_of_the_inputs_size_with_chroma(
    tmp_path, smoke_data, embedded_photos
):
    model = build_model(image_size=32)
    train(model, smoke_data, optimizer="adam", epochs=2, batch_size=8)
    model_path = save_model(model, tmp_path / "model.keras", l_scaling="unit")
    inputs = tmp_path / "in"
    write_photo(inputs / "colour.jpg", embedded_photos["skimage:coffee"], size=64)
    gray = np.asarray(Image.fromarray(embedded_photos["skimage:chelsea"]).convert("L"))
    (inputs / "sub").mkdir()
    Image.fromarray(gray[:77, :91]).save(inputs / "sub" / "gray.tif")
    result = run_colorize(
        "--model", str(model_path), "--input", str(inputs), "--output", str(tmp_path / "out")
    )
    assert result.returncode == 0, result.stderr
    assert not native_log_lines(result.stderr)
    gray_out = np.asarray(Image.open(tmp_path / "out" / "sub" / "gray.png"))
    assert gray_out.shape == (77, 91, 3)
    chroma = np.ptp(gray_out.astype(int), axis=-1)
    assert chroma.mean() > 0.5
    colour_out = Image.open(tmp_path / "out" / "colour.png")
    assert colour_out.size == Image.open(inputs / "colour.jpg").size


def test_help_explains_the_command():
    result = run_colorize("--help")
    assert result.returncode == 0 and "--model" in result.stdout and "runs:/" in result.stdout


def test_bad_inputs_are_one_line_errors(tmp_path):
    missing = run_colorize(
        "--model",
        str(tmp_path / "m.keras"),
        "--input",
        str(tmp_path / "none"),
        "--output",
        str(tmp_path / "o"),
    )
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "input folder not found" in missing.stderr
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "in" / "a.png")
    no_model = run_colorize(
        "--model",
        str(tmp_path / "m.keras"),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "o"),
    )
    assert no_model.returncode == 2 and "model not found" in no_model.stderr
    assert "Traceback" not in no_model.stderr


def test_output_names_never_escape_the_output_folder(tmp_path):
    root = tmp_path / "in"
    assert output_name(root / "a" / "b.jpg", root).as_posix() == "a/b.png"
