import logging

import numpy as np
import pytest
from PIL import Image

from colorize.data import DataError, load_embedded, load_folder, read_photos
from tests.conftest import write_photo


def test_embedded_default_holds_out_whole_photos(smoke_data):
    split = {row["file"]: row["split"] for row in smoke_data.manifest}
    assert len(split) == 12
    assert sum(1 for s in split.values() if s == "validation") == 3
    assert smoke_data.train_l.shape[1:] == (32, 32, 1) and smoke_data.train_l.dtype == np.uint8
    assert smoke_data.val_ab.shape[1:] == (32, 32, 2) and smoke_data.val_ab.dtype == np.int8
    assert len(smoke_data.train_l) == 9 * 4 and len(smoke_data.val_l) == 3 * 2
    assert all(len(row["sha256"]) == 64 for row in smoke_data.manifest)


def test_embedded_default_is_seeded():
    first, again = load_embedded(16, 2, seed=3), load_embedded(16, 2, seed=3)
    other = load_embedded(16, 2, seed=4)
    assert np.array_equal(first.train_ab, again.train_ab)
    assert not np.array_equal(first.train_ab, other.train_ab)


def test_folder_is_read_recursively_split_and_recorded(photo_folder):
    data = load_folder(photo_folder, 32, val_fraction=0.34, seed=1)
    assert data.num_photos == 6
    assert len(data.train_l) == 4 and len(data.val_l) == 2
    files = {row["file"] for row in data.manifest}
    assert "nested/photo1.png" in files and "photo4.webp" in files
    assert load_folder(photo_folder, 32, val_fraction=0.34, seed=1).manifest == data.manifest


def test_grayscale_photos_in_training_folder_are_skipped_and_counted(photo_folder, caplog):
    gray = np.repeat(np.linspace(0, 255, 64 * 64).reshape(64, 64, 1).astype(np.uint8), 3, axis=-1)
    write_photo(photo_folder / "gray.png", gray)
    Image.fromarray(gray[..., 0]).save(photo_folder / "gray_l.jpg")
    with caplog.at_level(logging.WARNING):
        data = load_folder(photo_folder, 32)
    assert sorted(p.rsplit("/", 1)[-1] for p in data.skipped["grayscale"]) == [
        "gray.png",
        "gray_l.jpg",
    ]
    assert data.num_photos == 6
    assert "2 grayscale" in caplog.text


def test_unreadable_files_are_skipped_with_a_warning_naming_them(photo_folder, caplog):
    (photo_folder / "notes.jpg").write_text("not an image")
    good = (photo_folder / "photo1.png") if (photo_folder / "photo1.png").exists() else None
    truncated = photo_folder / "truncated.png"
    source = next(photo_folder.rglob("*.png")).read_bytes()
    truncated.write_bytes(source[: len(source) // 3])
    with caplog.at_level(logging.WARNING):
        data = load_folder(photo_folder, 32)
    assert good is None or data.num_photos == 6
    names = sorted(p.rsplit("/", 1)[-1] for p in data.skipped["unreadable"])
    assert names == ["notes.jpg", "truncated.png"]
    assert "notes.jpg" in caplog.text and "truncated.png" in caplog.text


def test_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="training folder not found: .*nowhere"):
        load_folder(tmp_path / "nowhere", 32)


def test_empty_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_folder(tmp_path / "empty", 32)


def test_folder_without_colour_photos_is_an_error(tmp_path):
    gray = np.full((40, 40), 128, np.uint8)
    for i in range(3):
        Image.fromarray(gray).save(tmp_path / f"g{i}.png")
    with pytest.raises(DataError, match="0 usable colour photo.*3 grayscale"):
        load_folder(tmp_path, 32)


def test_test_folder_accepts_grayscale(tmp_path):
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(tmp_path / "g.png")
    photos, unreadable = read_photos(tmp_path, "test")
    assert len(photos) == 1 and photos[0][1].shape == (40, 50, 3) and unreadable == []
