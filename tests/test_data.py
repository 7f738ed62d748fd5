"""Datasets: sources, whole-scene splits, seeded crops with augmentation, and the exact labels."""

import logging

import numpy as np
import pytest
from PIL import Image

from colorize.datasets import DataError, DatasetSpec, load_dataset, read_photos
from colorize.datasets.augment import random_crops
from tests.conftest import write_photo

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def folder_spec(folder, **settings) -> DatasetSpec:
    return DatasetSpec(**{"source": "folder", "folder": str(folder), "image_size": 32,
                          "crops_per_photo": 2, **settings})  # fmt: skip


def test_embedded_default_holds_out_whole_scenes(smoke_data):
    rows = {row["file"]: row for row in smoke_data.manifest}
    assert len(rows) == 12
    scenes = {row["scene"] for row in rows.values() if row["split"] == "validation"}
    assert len(scenes) == 3  # three scenes, one of them perhaps the two-photo motorcycle pair
    # the stereo pair is one scene: both halves on the same side
    assert rows["skimage:motorcycle_left"]["split"] == rows["skimage:motorcycle_right"]["split"]
    assert smoke_data.train_l.shape[1:] == (32, 32, 1) and smoke_data.train_l.dtype == np.uint8
    assert smoke_data.val_ab.shape[1:] == (32, 32, 2) and smoke_data.val_ab.dtype == np.int8
    assert (
        smoke_data.val_target.shape[1:] == (32, 32, 3) and smoke_data.val_target.dtype == np.int8
    )
    assert set(np.unique(smoke_data.val_label)) <= {0, 1}  # the accuracy label, beside a and b
    train = sum(r["crops"] for r in rows.values() if r["split"] == "train")
    val = sum(r["crops"] for r in rows.values() if r["split"] == "validation")
    assert (len(smoke_data.train_l), len(smoke_data.val_l)) == (train, val)
    assert all(len(row["sha256"]) == 64 for row in rows.values())


def test_datasets_are_seeded():
    spec = DatasetSpec(image_size=16, crops_per_photo=2, seed=3)
    first, again = load_dataset(spec), load_dataset(spec)
    other = load_dataset(DatasetSpec(image_size=16, crops_per_photo=2, seed=4))
    assert np.array_equal(first.train_ab, again.train_ab)
    assert not np.array_equal(first.train_ab, other.train_ab)


def test_folder_gets_seeded_crops_and_whole_photo_validation(photo_folder):
    data = load_dataset(folder_spec(photo_folder, val_fraction=0.34, seed=1, crops_per_photo=3))
    assert data.num_photos == 6
    splits = [row["split"] for row in data.manifest]
    assert splits.count("validation") == 2 and splits.count("train") == 4
    assert len(data.train_l) == 4 * 3  # crops_per_photo applies to folders too
    assert len(data.val_l) == 2 * 2  # validation crops come from the held-out photos only
    files = {row["file"] for row in data.manifest}
    assert "nested/photo1.png" in files and "photo4.webp" in files
    again = load_dataset(folder_spec(photo_folder, val_fraction=0.34, seed=1, crops_per_photo=3))
    assert again.manifest == data.manifest and np.array_equal(again.train_l, data.train_l)


def test_crops_are_augmented_and_rotations_bring_in_no_blank_pixels(embedded_photos):
    rng = np.random.default_rng(0)
    photo = embedded_photos["skimage:astronaut"]
    crops = random_crops(photo, 32, 40, rng, rotate=True)
    assert len({crop.tobytes() for crop in crops}) == 40  # zoom, position, flip, rotation vary
    flat = np.full((300, 400, 3), (200, 40, 90), np.uint8)
    for crop in random_crops(flat, 32, 30, np.random.default_rng(1), rotate=True):
        assert (crop == (200, 40, 90)).all()  # a turned crop is filled from the photo around it


def test_too_many_validation_photos_is_an_error_before_any_work():
    with pytest.raises(DataError, match="data.val_photos=11 leaves no training photo.*1 to 10"):
        load_dataset(DatasetSpec(image_size=16, val_photos=11))


def test_grayscale_photos_in_training_folder_are_skipped_and_counted(photo_folder, caplog):
    gray = np.repeat(np.linspace(0, 255, 64 * 64).reshape(64, 64, 1).astype(np.uint8), 3, axis=-1)
    write_photo(photo_folder / "gray.png", gray)
    Image.fromarray(gray[..., 0]).save(photo_folder / "gray_l.jpg")
    with caplog.at_level(logging.WARNING):
        data = load_dataset(folder_spec(photo_folder))
    names = sorted(p.rsplit("/", 1)[-1] for p in data.skipped["grayscale"])
    assert names == ["gray.png", "gray_l.jpg"]
    assert data.num_photos == 6
    assert "2 grayscale" in caplog.text


def test_missing_and_empty_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="training folder not found: .*nowhere"):
        load_dataset(folder_spec(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_dataset(folder_spec(tmp_path / "empty"))


def test_folder_without_colour_photos_is_an_error(tmp_path):
    gray = np.full((40, 40), 128, np.uint8)
    for i in range(3):
        Image.fromarray(gray).save(tmp_path / f"g{i}.png")
    with pytest.raises(DataError, match="0 usable colour photo.*3 grayscale"):
        load_dataset(folder_spec(tmp_path))


def test_test_folder_accepts_grayscale(tmp_path):
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(tmp_path / "g.png")
    photos, unreadable = read_photos(tmp_path, "test")
    assert len(photos) == 1 and photos[0][1].shape == (40, 50, 3) and unreadable == []
