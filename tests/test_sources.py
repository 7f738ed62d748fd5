"""Data sources as a registry: each source one module, found by name; the embedded set's named
validation scenes; the test photos people judge a model on; and a source added in a test that
runs through the dataset builder, the cache and a study's configuration."""

from __future__ import annotations

import numpy as np
import pytest

from colorize import datasets
from colorize.datasets import DataError, DatasetSpec, PhotoRef, load_dataset, sources
from colorize.datasets.sources import Source
from tests.conftest import write_photo

JUDGEABLE = ["sklearn:china.jpg", "skimage:chelsea", "skimage:coffee"]  # written out, not read


def _validation(data) -> set[str]:
    return {row["file"] for row in data.manifest if row["split"] == "validation"}


def test_every_source_is_a_module_of_the_registry_and_data_source_lists_their_forms():
    assert list(sources.SOURCES) == ["embedded", "folder", "landscapes", "hf", "url"]
    assert sources.forms()[:2] == ("embedded", "landscapes")  # a folder is data.train_dir
    assert [form.split(":")[0] for form in sources.forms()[2:]] == ["hf", "url"]
    with pytest.raises(DataError, match="unknown data source 'flickr'; allowed: embedded"):
        DatasetSpec(source="flickr")


def test_embedded_validation_is_the_named_scenes_a_person_can_judge():
    data = load_dataset(DatasetSpec(image_size=16, crops_per_photo=1))
    assert _validation(data) == set(JUDGEABLE)
    assert "skimage:hubble_deep_field" not in _validation(data)  # star fields train
    one = load_dataset(DatasetSpec(image_size=16, crops_per_photo=1, val_photos=1))
    assert _validation(one) == {"sklearn:china.jpg"}  # the first of the list


def test_more_embedded_validation_scenes_than_named_are_drawn_seeded_from_the_rest():
    spec = DatasetSpec(image_size=16, crops_per_photo=1, val_photos=5)
    held = {ref.scene for ref in datasets.test_photos(spec)}
    assert set(JUDGEABLE) < held and len(held) == 5
    assert held == {ref.scene for ref in datasets.test_photos(spec)}  # seeded
    other = {ref.scene for ref in datasets.test_photos(DatasetSpec(val_photos=5, seed=4))}
    assert set(JUDGEABLE) < other


def test_embedded_test_photos_are_its_validation_scenes_whole():
    spec = DatasetSpec(image_size=16, crops_per_photo=1)
    refs = datasets.test_photos(spec)
    assert [ref.name for ref in refs] == sorted(JUDGEABLE)
    assert {ref.name for ref in refs} == _validation(load_dataset(spec))
    photo = refs[0].read()
    assert photo.ndim == 3 and min(photo.shape[:2]) > 200  # whole photos, not crops


def test_a_folders_test_photos_are_the_photos_its_build_holds_out(photo_folder):
    gray = np.repeat(np.linspace(0, 255, 64 * 64).reshape(64, 64, 1).astype(np.uint8), 3, -1)
    write_photo(photo_folder / "a_gray.png", gray)  # skipped by the build: not drawn from
    spec = DatasetSpec(
        "folder", str(photo_folder), image_size=16, crops_per_photo=1, val_fraction=0.34
    )
    held = [ref.name for ref in datasets.test_photos(spec)]
    assert len(held) == 2 and "a_gray.png" not in held
    assert set(held) == _validation(load_dataset(spec))


class Tiles(Source):
    """A source made in the test: flat colour tiles held in memory."""

    name = form = "tiles"

    def photos(self, spec):
        colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
        return [
            PhotoRef(f"tile{i}", f"tile{i}", f"{i:064x}", loader=lambda c=c: _tile(c))
            for i, c in enumerate(colours)
        ]

    def origin(self, spec):
        return {"name": "tiles", "type": "generated", "location": {"colours": 5}}


def _tile(colour) -> np.ndarray:
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[:] = colour
    rgb[:24, :, 0] //= 2  # two shades, so crops differ
    return rgb


@pytest.fixture
def tiles():
    source = sources.register(Tiles())
    yield source
    del sources.SOURCES[source.name]


def test_a_source_added_in_one_module_runs_through_the_builder_cache_and_study(tiles, tmp_path):
    from colorize.cache import load_dataset_cached
    from experiments.settings.config import compose
    from experiments.trials.data import StudyData

    spec = DatasetSpec("tiles", image_size=16, crops_per_photo=2, val_photos=2)
    data = load_dataset(spec)
    assert data.name == "tiles" and data.num_photos == 5 and len(_validation(data)) == 2
    assert len(data.train_l) == 3 * 2 and spec.what == "the tiles set"
    cached = load_dataset_cached(tmp_path / "cache", spec)
    assert cached.cache_path.name.startswith("tiles-16-")
    assert np.array_equal(cached.train_ab, data.train_ab)
    assert {ref.name for ref in datasets.test_photos(spec)} == _validation(data)
    with pytest.raises(ValueError, match="needs a new name, not 'tiles'"):
        sources.register(Tiles())

    cfg, _ = compose(["data.source=tiles", "data.image_size=16", "data.val_photos=2",
                      f"runs_dir={tmp_path}"])  # fmt: skip
    study = StudyData(cfg)
    record = study.record(study.load())
    assert (record["name"], record["source"], record["location"]) == (
        "tiles", "generated", {"colours": 5},
    )  # fmt: skip
    assert record["counts"]["photos"] == 5
