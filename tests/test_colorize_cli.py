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
    train(model, smoke_data, optimizer="adam", epochs=2, batch_size=8, run_eagerly=True)
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
        "--model",
        str(model_path),
        "--input",
        str(inputs),
        "--output",
        str(tmp_path / "out"),
        fresh=True,  # its console as a user sees it, native libraries' lines included
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
    # the paired interval worked out here (mean, sd, t quantile of 2 df from a table), not by
    # `colorize.stats`, which computed the scores' own
    gaps = np.array(
        [r["model"]["delta_e2000"] - r["gray"]["delta_e2000"] for r in scores["photos"]]
    )
    half = 4.302653 * gaps.std(ddof=1) / np.sqrt(3)
    low, high = gaps.mean() - half, gaps.mean() + half
    expected = "beats gray" if high < 0 else "worse than gray" if low > 0 else "inconclusive"
    assert scores["verdict"] == expected
    assert (scores["test"]["low"], scores["test"]["high"]) == pytest.approx((low, high), rel=1e-5)
    text = run_colorize("evaluate", "--model", str(model_path), "--photos", str(photos))
    assert text.returncode == 0 and "beats gray" in text.stdout.splitlines()[0]
    assert text.stdout.strip().splitlines()[-1].startswith(expected)


def _one_error_line(result) -> str:
    """The command's one error line (exit 2, no traceback); the whole stderr is read: warnings
    naming a skipped photo may come before it, and nothing else."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    others = [line for line in lines if line != errors[0] and not line.startswith("WARNING: ")]
    assert not others, result.stderr[-3000:]
    return errors[0]


def _noise(shape: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)


@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_photos_under_three_pixels_are_skipped_naming_them(tmp_path, model_path, command):
    """A photo 1 px wide and one of 2x2 px: each skipped with a warning naming it; alone in
    the folder they are a one-line error (exit 2) and nothing is written; beside a photo that
    can be used, that one is."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    Image.fromarray(_noise((50, 1))).save(photos / "thin.png")
    Image.fromarray(_noise((2, 2))).save(photos / "tiny.png")

    def run():
        if command == "evaluate":
            return run_colorize("evaluate", "--model", str(model_path), "--photos", str(photos))
        return run_colorize(
            "--model", str(model_path), "--input", str(photos), "--output", str(out)
        )

    alone = run()
    assert "holds no readable image" in _one_error_line(alone)
    for name, size in (("thin.png", "1x50"), ("tiny.png", "2x2")):
        assert f"{name}: {size} is too small to colorize (at least 3 pixels a side)" in (
            alone.stderr
        )
    assert not out.exists()
    from colorize.datasets import embedded_arrays

    write_photo(photos / "coffee.png", embedded_arrays()["skimage:coffee"], size=32)
    beside = run()
    assert beside.returncode == 0, beside.stderr[-3000:]
    assert "thin.png: 1x50 is too small" in beside.stderr
    if command == "colorize":
        assert sorted(p.name for p in out.iterdir()) == ["coffee.png"]


DAMAGED_MODELS = {  # (what is damaged, how): the model file or the settings file beside it
    "model cut short": lambda m: m.write_bytes(m.read_bytes()[:2000]),
    "model bits flipped": lambda m: m.write_bytes(
        (lambda b, n: b[:n] + bytes(255 - x for x in b[n : n + 4096]) + b[n + 4096 :])(
            m.read_bytes(), len(m.read_bytes()) // 2
        )
    ),
    "settings cut short": lambda m: m.with_suffix(".json").write_text('{"l_scaling": "unit",'),
    "settings not an object": lambda m: m.with_suffix(".json").write_text("[1, 2]"),
    "settings of an unknown scaling": lambda m: m.with_suffix(".json").write_text(
        '{"l_scaling": "sideways"}'
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED_MODELS))
def test_a_damaged_model_or_settings_file_is_a_one_line_error(tmp_path, model_path, damage):
    import shutil

    model = tmp_path / "model.keras"
    shutil.copy2(model_path, model)
    shutil.copy2(model_path.with_suffix(".json"), model.with_suffix(".json"))
    DAMAGED_MODELS[damage](model)
    (tmp_path / "in").mkdir()
    write_photo(tmp_path / "in" / "a.png", _noise((40, 40)))
    result = run_colorize(
        "--model", str(model), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")
    )
    line = _one_error_line(result)
    assert str(model.with_suffix(".json" if "settings" in damage else ".keras")) in line
    assert not (tmp_path / "o").exists()
    scored = run_colorize("evaluate", "--model", str(model), "--photos", str(tmp_path / "in"))
    assert _one_error_line(scored) == line


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, model_path):
    """`--output` under a file, and in a folder without write permission (as root, run without
    root's power to write anywhere): one line naming why, nothing written."""
    import sys

    from tests.test_bad_inputs import run_without_root_powers

    (tmp_path / "in").mkdir()
    write_photo(tmp_path / "in" / "a.png", _noise((40, 40)))
    (tmp_path / "a-file").write_text("")
    under_a_file = run_colorize(
        "--model", str(model_path), "--input", str(tmp_path / "in"),
        "--output", str(tmp_path / "a-file" / "out"),
    )  # fmt: skip
    assert f"{tmp_path / 'a-file'} is not a folder" in _one_error_line(under_a_file)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_without_root_powers(
            [sys.executable, "-m", "colorize", "--model", str(model_path),
             "--input", str(tmp_path / "in"), "--output", str(locked / "out")],
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert f"no permission to write in {locked}" in _one_error_line(result)
    assert list(locked.iterdir()) == []


def test_the_pixel_limit_is_a_setting(tmp_path, model_path):
    """`COLORIZE_MAX_MEGAPIXELS` lowers the limit: a 40x40 photo is then skipped naming its
    size, undecoded; a value that is not a number is a one-line error."""
    import os
    import subprocess
    import sys

    (tmp_path / "in").mkdir()
    write_photo(tmp_path / "in" / "big.png", _noise((40, 40)))

    def run(limit: str):
        return subprocess.run(
            [sys.executable, "-m", "colorize", "--model", str(model_path),
             "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "COLORIZE_MAX_MEGAPIXELS": limit},
        )  # fmt: skip

    low = run("0.001")  # 1000 pixels
    _one_error_line(low)
    assert "big.png: 40x40 is 0.0016 megapixels, over the limit of 0.001: not decoded" in (
        low.stderr
    )
    wrong = run("lots")
    assert "COLORIZE_MAX_MEGAPIXELS=lots must be a positive number" in _one_error_line(wrong)
    assert not (tmp_path / "out").exists()
