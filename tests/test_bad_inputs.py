"""Every kind of bad photo named in the reliability guarantees, each with its outcome."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorize.images import MAX_SIDE, UnreadableImage, read_rgb
from colorize.predict import output_name
from experiments.common.errors import UsageError


@pytest.fixture
def colourful(embedded_photos) -> np.ndarray:
    return embedded_photos["skimage:coffee"][:120, :160]


def test_corrupt_jpeg_is_unreadable(tmp_path, colourful):
    path = tmp_path / "corrupt.jpg"
    Image.fromarray(colourful).save(path)
    data = bytearray(path.read_bytes())
    data[200:] = os.urandom(len(data) - 200)
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableImage, match="corrupt.jpg"):
        read_rgb(path)


def test_truncated_png_and_text_named_jpg_are_unreadable(tmp_path, colourful):
    png = tmp_path / "cut.png"
    Image.fromarray(colourful).save(png)
    png.write_bytes(png.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    for path in (png, text):
        with pytest.raises(UnreadableImage, match=path.name):
            read_rgb(path)


def test_sixteen_bit_png_keeps_its_contrast(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    assert rgb.min() == 0 and rgb.max() == 255


def test_rgba_palette_and_cmyk_become_rgb_with_their_colours(tmp_path, colourful):
    rgba = np.dstack([colourful, np.full(colourful.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(colourful).convert("P", palette=Image.Palette.ADAPTIVE).save(
        tmp_path / "pal.png"
    )
    Image.fromarray(colourful).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name, tolerance in (("alpha.png", 0), ("pal.png", 40), ("cmyk.jpg", 40)):
        rgb = read_rgb(tmp_path / name)
        assert rgb.shape == colourful.shape, name
        assert np.abs(rgb.astype(int) - colourful).mean() <= tolerance, name


def test_transparent_pixels_are_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    assert (read_rgb(tmp_path / "clear.png") == 255).all()


def study_data(folder, image_size: int = 32):
    """The dataset as a study loads it: listed and keyed once, built into the cache."""
    from experiments.settings.config import compose
    from experiments.trials.data import StudyData

    cfg, _ = compose(
        [f"data.train_dir={folder}", f"data.image_size={image_size}", "data.crops_per_photo=1",
         f"runs_dir={folder.parent / 'runs'}"]
    )  # fmt: skip
    return StudyData(cfg).load()


def test_small_photo_is_upscaled_with_a_warning(tmp_path, embedded_photos, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(embedded_photos)[:3]
    for i, name in enumerate(names):
        Image.fromarray(embedded_photos[name]).save(folder / f"p{i}.png")
    Image.fromarray(embedded_photos[names[0]][:20, :30]).save(folder / "tiny.png")
    with caplog.at_level(logging.WARNING):
        data = study_data(folder, 64)
    assert data.num_photos == 4 and [p.rsplit("/", 1)[-1] for p in data.upscaled] == ["tiny.png"]
    assert "tiny.png is 30x20, smaller than image_size 64: upscaled" in caplog.text


def test_very_large_photo_is_downscaled_without_a_memory_blow_up(tmp_path):
    path = tmp_path / "huge.jpg"
    image = Image.new("RGB", (12000, 9000), (200, 120, 40))
    image.paste((30, 90, 200), (3000, 2000, 9000, 7000))
    image.save(path, quality=70)
    del image
    # Measured in a fresh process (VmHWM: its own peak resident memory). Decoded in full the
    # photo alone takes 309 MiB as uint8 and 2.4 GiB as float64; reading it stays well below.
    code = (
        "from colorize.images import read_rgb;"
        f"rgb = read_rgb({str(path)!r});"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(rgb.shape[0], rgb.shape[1], peak)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    height, width, peak_kib = map(int, out.stdout.split())
    assert max(height, width) <= MAX_SIDE and width / height == pytest.approx(4 / 3, rel=0.01)
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"


def test_a_photo_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path):
    """A real 20000x20000 PNG (400 megapixels; 1.2 GB decoded as RGB) is refused naming its
    size and the limit, in a process whose peak memory shows it was never decoded."""
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(path)  # 1 bit a pixel: cheap to write
    code = (
        "from colorize.images import UnreadableImage, read_rgb\n"
        "try:\n"
        f"    read_rgb({str(path)!r})\n"
        "except UnreadableImage as error:\n"
        "    print(error)\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(peak)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, peak_kib = out.stdout.splitlines()
    assert message == f"{path}: 20000x20000 is 400 megapixels, over the limit of 100: not decoded"
    assert int(peak_kib) < 300 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"


def test_broken_links_and_link_loops_are_skipped_with_a_warning(tmp_path, embedded_photos, caplog):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(sorted(embedded_photos)[:3]):
        Image.fromarray(embedded_photos[name]).save(folder / f"p{i}.png")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "loop1.jpg").symlink_to(folder / "loop2.jpg")
    (folder / "loop2.jpg").symlink_to(folder / "loop1.jpg")
    (folder / "sub" / "back").symlink_to(folder)  # a folder that contains itself
    with caplog.at_level(logging.WARNING):
        data = study_data(folder)
    unreadable = sorted(p.rsplit("/", 1)[-1] for p in data.skipped["unreadable"])
    assert unreadable == ["gone.jpg", "loop1.jpg", "loop2.jpg"] and data.num_photos == 3
    for name in ("gone.jpg", "loop1.jpg", "loop2.jpg", "sub/back: a link back to a folder"):
        assert name in caplog.text


def test_file_without_read_permission_is_unreadable(tmp_path, colourful):
    path = tmp_path / "locked.png"
    Image.fromarray(colourful).save(path)
    path.chmod(0)
    code = (
        "from colorize.images import UnreadableImage, read_rgb\n"
        f"try:\n    read_rgb({str(path)!r})\n"
        "except UnreadableImage as error:\n    print('unreadable:', error)"
    )
    result = run_without_root_powers([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("unreadable: ") and "locked.png" in result.stdout


def test_folder_of_only_bad_files_is_a_one_line_error(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_text("x")
    with pytest.raises(UsageError, match="0 usable colour photo.*1 unreadable"):
        study_data(folder)


def test_output_names_stay_inside_the_output_folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "sub" / "link").symlink_to(outside)
    assert (
        output_name(root / "sub" / "link" / "photo.jpg", root).as_posix() == "sub/link/photo.png"
    )
    assert output_name(root / "a.b.jpeg", root).as_posix() == "a.b.png"
    assert ".." not in output_name(root / ".." / "x.jpg", root).parts


def bad_photo_folder(folder, embedded_photos):
    """Good photos beside one of each kind of bad input a folder can hold."""
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(sorted(embedded_photos)[:4]):
        Image.fromarray(embedded_photos[name]).resize((64, 48)).save(folder / f"p{i}.jpg")
    (folder / "junk.jpg").write_text("not an image")
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(folder / "gray.png")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "loop1.jpg").symlink_to(folder / "loop2.jpg")
    (folder / "loop2.jpg").symlink_to(folder / "loop1.jpg")
    (folder / "sub" / "back").symlink_to(folder)
    return folder


def test_study_skips_every_bad_photo_with_a_warning_and_logs_their_count(
    tmp_path, embedded_photos
):
    from tests.studies_helpers import mlflow_runs, run_cli

    folder = bad_photo_folder(tmp_path / "photos", embedded_photos)
    result = run_cli(
        "study=optimizers", "profile=smoke", "n_trials=1", f"runs_dir={tmp_path / 'runs'}",
        f"data.train_dir={folder}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in ("junk.jpg", "gone.jpg", "loop1.jpg", "loop2.jpg", "sub/back"):
        assert name in result.stderr, name
    assert "skipped 1 grayscale and 4 unreadable" in result.stderr
    runs = mlflow_runs(tmp_path / "runs", "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    assert parent["metrics.skipped_unreadable"] == 4 and parent["metrics.skipped_grayscale"] == 1


def test_unreadable_subfolder_and_file_are_skipped(tmp_path, embedded_photos):
    """Permissions as a user meets them: as root (CI), the study runs without root's power to
    read anything (`setpriv` drops it), so mode 000 means unreadable there too."""
    folder = tmp_path / "photos"
    (folder / "locked").mkdir(parents=True)
    for i, name in enumerate(sorted(embedded_photos)[:3]):
        Image.fromarray(embedded_photos[name]).resize((64, 48)).save(folder / f"p{i}.jpg")
    Image.fromarray(embedded_photos["skimage:coffee"]).save(folder / "locked" / "hidden.png")
    Image.fromarray(embedded_photos["skimage:rocket"]).save(folder / "secret.png")
    (folder / "secret.png").chmod(0)
    (folder / "locked").chmod(0)
    try:
        result = run_without_root_powers(
            [sys.executable, "-m", "experiments.run", "study=optimizers", "profile=smoke",
             "n_trials=1", f"runs_dir={tmp_path / 'runs'}", f"data.train_dir={folder}"],
        )  # fmt: skip
    finally:
        (folder / "locked").chmod(0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "locked: cannot read the folder" in result.stderr
    assert (
        "secret.png" in result.stderr and "skipped 0 grayscale and 1 unreadable" in result.stderr
    )


def run_without_root_powers(command: list[str]) -> subprocess.CompletedProcess:
    """Run `command`; as root, without the capabilities that let root read any file."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop read powers")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)
