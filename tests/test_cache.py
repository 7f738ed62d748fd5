"""The dataset cache: converted once, memory-mapped, rebuilt when anything it came from changes,
and never trusted when damaged. Real photo files on disk, tiny images."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from colorize import cache
from colorize.batches import LabBatches
from colorize.cache import load_dataset_cached
from colorize.datasets import DataError, DatasetSpec, load_dataset
from colorize.datasets.sinks import ARRAYS
from tests.conftest import write_photo

SIZE = 32

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def spec(folder, size: int = SIZE, **settings) -> DatasetSpec:
    """A folder (or, without one, the embedded set) at `size`, two crops a photo by default."""
    source = {"source": "folder", "folder": str(folder)} if folder else {}
    return DatasetSpec(**source, image_size=size, **{"crops_per_photo": 2, **settings})


def load(cache_dir, folder, verify=True, **settings):
    return load_dataset_cached(cache_dir, spec(folder, **settings), verify=verify)


def uncached(folder, **settings):
    return load_dataset(spec(folder, **settings))


def same_arrays(a, b) -> bool:
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ARRAYS)


def only_entry(cache_dir):
    (entry,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    return entry


def test_second_load_reuses_the_cache_and_equals_the_uncached_dataset(tmp_path, photo_folder):
    first = load(tmp_path / "cache", photo_folder)
    second = load(tmp_path / "cache", photo_folder)
    assert first.built and not second.built
    assert second.cache_path == first.cache_path and second.key == first.key
    plain = uncached(photo_folder)
    assert same_arrays(second, plain) and same_arrays(first, plain)
    assert second.manifest == plain.manifest
    assert second.name == plain.name and second.image_size == SIZE
    assert second.skipped == plain.skipped and second.upscaled == plain.upscaled


def test_arrays_are_read_only_memmaps_that_batches_stream_from(tmp_path, photo_folder):
    data = load(tmp_path / "cache", photo_folder)
    for name in ARRAYS:
        array = getattr(data, name)
        assert isinstance(array, np.memmap) and not array.flags.writeable, name
    batches = LabBatches(data.train_l, data.train_target, 2, shuffle=True, seed=1)
    inputs, targets = batches[0]
    assert type(inputs) is np.ndarray and inputs.shape == (2, SIZE, SIZE, 1)
    assert targets.shape == (2, SIZE, SIZE, 3) and targets.dtype == np.int8  # a, b, label
    cache.release_pages(data.train_l)  # pages handed back stay readable
    assert np.array_equal(data.train_l, uncached(photo_folder).train_l)


def test_streaming_batches_hands_served_pages_back(tmp_path, photo_folder, monkeypatch):
    data = load(tmp_path / "cache", photo_folder)
    released = []
    monkeypatch.setattr(cache, "release_pages", lambda array: released.append(array.shape))
    monkeypatch.setattr(cache, "RELEASE_BYTES", 3 * cache.FAULT_SPAN)  # every ~3 photos
    batches = LabBatches(data.train_l, data.train_target, 2, shuffle=True, seed=0)
    got = [batches[i] for i in range(len(batches))]
    assert set(released) == {data.train_l.shape, data.train_target.shape}  # each released
    monkeypatch.undo()
    plain = LabBatches(np.asarray(data.train_l), np.asarray(data.train_target), 2, shuffle=True)
    for (x, y), (px, py) in zip(got, [plain[i] for i in range(len(plain))], strict=True):
        assert np.array_equal(x, px) and np.array_equal(y, py)


def test_embedded_default_is_cached_and_equals_the_uncached_build(tmp_path):
    first = load(tmp_path / "cache", None, crops_per_photo=2)
    second = load(tmp_path / "cache", None, crops_per_photo=2)
    assert first.built and not second.built
    expected = uncached(None, crops_per_photo=2)
    assert same_arrays(second, expected) and second.manifest == expected.manifest
    assert second.name == "embedded"
    assert load(tmp_path / "cache", None, crops_per_photo=4).built  # a setting it reads


def test_changing_a_file_rebuilds(tmp_path, photo_folder, embedded_photos):
    first = load(tmp_path / "cache", photo_folder)
    photo = photo_folder / "photo0.jpg"
    write_photo(photo, embedded_photos["skimage:coffee"])
    changed = load(tmp_path / "cache", photo_folder)
    assert changed.built and changed.key != first.key
    assert same_arrays(changed, uncached(photo_folder))


def test_adding_or_removing_a_file_rebuilds(tmp_path, photo_folder, embedded_photos):
    first = load(tmp_path / "cache", photo_folder)
    write_photo(photo_folder / "more" / "extra.png", embedded_photos["skimage:coffee"])
    added = load(tmp_path / "cache", photo_folder)
    (photo_folder / "more" / "extra.png").unlink()
    removed = load(tmp_path / "cache", photo_folder)
    assert added.built and added.num_photos == first.num_photos + 1
    assert not removed.built and removed.key == first.key  # back to the first entry


@pytest.mark.parametrize(
    "setting",
    [{"val_fraction": 0.4}, {"seed": 3}, {"crops_per_photo": 3}],
    ids=["val_fraction", "seed", "crops_per_photo"],
)
def test_changing_a_setting_rebuilds(tmp_path, photo_folder, setting):
    first = load(tmp_path / "cache", photo_folder)
    changed = load(tmp_path / "cache", photo_folder, **setting)
    assert changed.built and changed.key != first.key
    assert same_arrays(changed, uncached(photo_folder, **setting))
    assert not load(tmp_path / "cache", photo_folder).built  # the first entry is still there


def test_changing_image_size_rebuilds_and_unread_settings_do_not(tmp_path, photo_folder):
    first = load(tmp_path / "cache", photo_folder)
    bigger = load_dataset_cached(tmp_path / "cache", spec(photo_folder, size=48))
    assert bigger.built and bigger.train_l.shape[1:3] == (48, 48)
    # a folder holds out a share of its photos, not val_photos: the entry is shared
    same = load(tmp_path / "cache", photo_folder, val_photos=1)
    assert not same.built and same.key == first.key


def test_a_new_cache_version_rebuilds(tmp_path, photo_folder, monkeypatch):
    first = load(tmp_path / "cache", photo_folder)
    monkeypatch.setattr(cache, "CACHE_VERSION", cache.CACHE_VERSION + 1)
    again = load(tmp_path / "cache", photo_folder)
    assert again.built and again.key != first.key


def truncate(entry):
    path = entry / "train_target.npy"
    path.write_bytes(path.read_bytes()[:-100])


def flip_a_byte(entry):
    path = entry / "val_l.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, same header: only the checksum can tell
    path.write_bytes(bytes(data))


def delete_json(entry):
    (entry / "meta.json").unlink()


def half_write_json(entry):
    text = (entry / "meta.json").read_text()
    (entry / "meta.json").write_text(text[: len(text) // 2])


def delete_array(entry):
    (entry / "train_l.npy").unlink()


def wrong_shape_in_json(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["val_target"]["shape"][0] += 1
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [truncate, flip_a_byte, delete_json, half_write_json, delete_array, wrong_shape_in_json],
)
def test_a_damaged_cache_is_rebuilt_without_error(tmp_path, photo_folder, damage, caplog):
    load(tmp_path / "cache", photo_folder)
    damage(only_entry(tmp_path / "cache"))
    rebuilt = load(tmp_path / "cache", photo_folder)
    assert rebuilt.built
    assert same_arrays(rebuilt, uncached(photo_folder))
    assert "invalid" in caplog.text
    assert not load(tmp_path / "cache", photo_folder).built  # and the rebuilt one is trusted


def test_without_checksums_a_flipped_byte_goes_unnoticed_but_size_still_counts(
    tmp_path, photo_folder
):
    load(tmp_path / "cache", photo_folder)
    entry = only_entry(tmp_path / "cache")
    flip_a_byte(entry)
    assert not load(tmp_path / "cache", photo_folder, verify=False).built
    truncate(entry)
    assert load(tmp_path / "cache", photo_folder, verify=False).built


KILLED_BUILD = """
import sys, time
from pathlib import Path

from colorize import cache
from colorize.cache import load_dataset_cached
from colorize.datasets import DatasetSpec


class Stalling(cache.NpySink):
    def write(self, name, block):
        super().write(name, block)
        print("writing", flush=True)  # the test kills the build here, mid-way
        time.sleep(600)


cache.NpySink = Stalling
spec = DatasetSpec(source="folder", folder=sys.argv[2], image_size=int(sys.argv[3]),
                   crops_per_photo=2)
load_dataset_cached(Path(sys.argv[1]), spec)
"""


def test_a_killed_build_leaves_no_entry_and_its_leftovers_are_cleared(tmp_path, photo_folder):
    """A child process building the cache is killed with SIGKILL mid-way (no cleanup can run):
    it leaves no entry, only a temp folder, which the next build clears before building."""
    import signal
    import subprocess
    import sys

    cache_dir = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(cache_dir), str(photo_folder), str(SIZE)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "writing"  # mid-build: its first array
        (stale,) = cache_dir.glob(".tmp-*")
        assert stale.is_dir() and any(stale.iterdir())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not [p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".tmp-")]
    assert stale.exists()  # nothing cleaned up after a kill
    rebuilt = load(cache_dir, photo_folder)
    assert rebuilt.built and not stale.exists()
    assert same_arrays(rebuilt, uncached(photo_folder))


def test_an_interrupted_build_removes_its_temp_folder(tmp_path, photo_folder, monkeypatch):
    """Ctrl-C (an exception inside the build) cleans up: no entry and no temp folder."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "NpySink", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(tmp_path / "cache", photo_folder)
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # the lock file stays


def only_entry_name(tmp_path, photo_folder) -> str:
    key, _ = cache.dataset_key(spec(photo_folder))
    return cache._entry_name(spec(photo_folder), key)


def test_grayscale_and_unreadable_files_are_skipped_as_uncached(
    tmp_path, photo_folder, embedded_photos
):
    gray = embedded_photos["skimage:astronaut"].mean(axis=-1).astype(np.uint8)
    write_photo(photo_folder / "gray.png", np.stack([gray] * 3, axis=-1))
    (photo_folder / "broken.jpg").write_bytes(b"not a jpeg")
    load(tmp_path / "cache", photo_folder)
    cached = load(tmp_path / "cache", photo_folder)
    plain = uncached(photo_folder)
    assert not cached.built
    assert cached.skipped == plain.skipped
    assert cached.skipped["grayscale"] == [str(photo_folder / "gray.png")]
    assert cached.skipped["unreadable"] == [str(photo_folder / "broken.jpg")]
    assert same_arrays(cached, plain) and cached.manifest == plain.manifest


def test_a_moved_folder_keeps_its_cache_with_its_new_paths(tmp_path, photo_folder):
    load(tmp_path / "cache", photo_folder)
    moved = photo_folder.rename(tmp_path / "elsewhere")
    data = load(tmp_path / "cache", moved)
    assert not data.built and data.name == str(moved)


def test_missing_or_empty_folders_are_data_errors_and_cache_nothing(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "cache", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load(tmp_path / "cache", tmp_path / "empty")
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]


def test_parallel_loads_build_once(tmp_path, photo_folder):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(load(tmp_path / "cache", photo_folder)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.built for r in results) == [False, False, True]
