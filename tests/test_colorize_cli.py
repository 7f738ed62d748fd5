import json

import numpy as np
import pytest
from PIL import Image

from colorize.model import build_model
from colorize.predict import output_name, save_model
from colorize.train import train
from tests.conftest import write_photo
from tests.studies_helpers import native_log_lines, run_colorize


@pytest.fixture(scope="module")
def model_path(smoke_data, tmp_path_factory):
    """A model trained for two epochs on the smoke data, saved as a user's `.keras` file."""
    model = build_model(image_size=32)
    train(model, smoke_data, optimizer="adam", epochs=2, batch_size=8)
    return save_model(model, tmp_path_factory.mktemp("model") / "model.keras", l_scaling="unit")


def test_colorize_writes_outputs_of_the_inputs_size_with_chroma(
    tmp_path, model_path, embedded_photos
):
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


def test_outputs_that_would_overwrite_inputs_or_each_other_are_refused(
    tmp_path, model_path, capsys
):
    from colorize.__main__ import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    gray = np.tile(np.arange(40, dtype=np.uint8), (30, 1))
    Image.fromarray(gray).save(inputs / "a.jpg")
    Image.fromarray(gray).save(inputs / "a.png")
    out = tmp_path / "out"
    assert main(["--model", str(model_path), "--input", str(inputs), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.jpg and" in err and "a.png would both be written as" in err
    assert not out.exists()  # nothing written
    (inputs / "a.png").unlink()
    for output in (inputs, inputs / "colorized"):
        args = ["--model", str(model_path), "--input", str(inputs), "--output", str(output)]
        assert main(args) == 2 and "is inside --input" in capsys.readouterr().err
    assert sorted(p.name for p in inputs.iterdir()) == ["a.jpg"]


def test_evaluate_scores_the_model_and_gray_photo_by_photo(tmp_path, model_path, embedded_photos):
    from colorize import stats

    photos = tmp_path / "photos"
    for name in ("skimage:coffee", "skimage:chelsea", "skimage:astronaut"):
        write_photo(photos / f"{name.split(':')[1]}.png", embedded_photos[name], size=64)
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(photos / "gray.png")
    result = run_colorize(
        "evaluate", "--model", str(model_path), "--photos", str(photos), "--json"
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert [row["photo"] for row in scores["photos"]] == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
    ]
    assert scores["skipped_grayscale"] == ["gray.png"]
    for row in scores["photos"]:
        assert set(row["model"]) == set(row["gray"]) == {
            "psnr", "ssim", "delta_e2000", "colorfulness_pred", "colorfulness_true", "ab_auc",
            "ab_auc_rebalanced",
        }  # fmt: skip
        assert row["gray"]["colorfulness_pred"] < 0.5  # gray has no colour
        assert row["beats_gray"] == (row["model"]["delta_e2000"] < row["gray"]["delta_e2000"])
    interval = stats.paired_interval(
        [r["model"]["delta_e2000"] for r in scores["photos"]],
        [r["gray"]["delta_e2000"] for r in scores["photos"]],
    )
    expected = {-1: "beats gray", 1: "worse than gray", 0: "inconclusive"}[interval.sign()]
    assert scores["verdict"] == expected
    assert scores["test"]["low"] == pytest.approx(interval.low)
    text = run_colorize("evaluate", "--model", str(model_path), "--photos", str(photos))
    assert text.returncode == 0 and "beats gray" in text.stdout.splitlines()[0]
    assert text.stdout.strip().splitlines()[-1].startswith(expected)
