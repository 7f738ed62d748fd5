"""The landscape dataset: Debian's wallpaper photographs, found where the packages installed them
or unpacked without root from downloaded `.deb` files, a smoke study on them scored against gray
on the whole-photo test set, and one line naming the commands when neither is there."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from colorize.datasets import DataError, DatasetSpec, landscapes
from tests.needs import needs

try:
    landscapes.locate()
    INSTALLED = True
except DataError:
    INSTALLED = False

needs_photos = needs("the landscape packages are not installed (see docs/DATASETS.md)", INSTALLED)


def test_missing_packages_are_one_line_naming_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(landscapes, "INSTALLED_ROOT", tmp_path / "nothing")
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError) as error:
        landscapes.locate()
    message = str(error.value)
    assert "\n" not in message
    for package in landscapes.packages():
        assert package in message
    assert "sudo apt-get install" in message and "apt-get download" in message
    assert str(tmp_path / "cache" / "landscapes" / "debs") in message


@needs_photos
def test_the_catalogue_holds_photographs_with_a_fixed_whole_photo_test_set():
    entries = landscapes.catalogue()
    assert len(entries) == 37 and len({e.name for e in entries}) == 37
    assert sum(e.kind == "landscape" for e in entries) == 18
    test = [e for e in entries if e.split == "test"]
    assert len(test) == 7 and {e.kind for e in test} == {"landscape", "nature-closeup"}
    photos = landscapes.landscape_photos("test")
    assert [p.name for p in photos] == [e.name for e in test]
    assert all(min(p.read().shape[:2]) >= 1000 for p in photos[:2])  # real, large photographs


@needs_photos
@needs("dpkg-deb (which builds the test's .debs) is not installed", bool(shutil.which("dpkg-deb")))
def test_downloaded_debs_are_unpacked_into_the_cache_without_root(tmp_path, monkeypatch):
    """As a user without root who ran `apt-get download`: .deb files in the cache only."""
    debs = tmp_path / "cache" / "landscapes" / "debs"
    debs.mkdir(parents=True)
    for package in landscapes.packages():  # packages holding the catalogued files
        root = tmp_path / "build" / package
        for entry in (e for e in landscapes.catalogue() if e.package == package):
            target = root / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(landscapes.INSTALLED_ROOT / entry.path, target)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\n"
            "Description: test\n"
        )
        subprocess.run(
            ["dpkg-deb", "-Znone", "--build", str(root), str(debs / f"{package}_1_all.deb")],
            check=True, capture_output=True,
        )  # fmt: skip
    monkeypatch.setattr(landscapes, "INSTALLED_ROOT", tmp_path / "not-installed")
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    found = landscapes.locate()
    assert len(found) == 37
    assert all(
        str(path).startswith(str(tmp_path / "cache" / "landscapes" / "root"))
        for path in found.values()
    )
    photo = landscapes.landscape_photos("test")[0]
    assert photo.read().ndim == 3  # its SHA-256 checked, then decoded


@needs_photos
def test_a_smoke_study_on_the_landscapes_is_scored_against_gray(tmp_path):
    from experiments.report.__main__ import main as report_main
    from tests.studies_helpers import run_cli

    runs_dir = tmp_path / "runs"
    result = run_cli(
        "study=optimizers", "profile=smoke", "data.source=landscapes", f"runs_dir={runs_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "30 photos" in result.stdout  # 37 less the 7 test photos
    assert "against gray on the 7 landscape test photos: " in result.stdout
    reports = tmp_path / "reports"
    assert report_main(["study=optimizers", f"runs_dir={runs_dir}", f"reports_dir={reports}"]) == 0
    gray = pd.read_csv(reports / "optimizers-gray.csv")
    assert len(gray) == 8 and gray["photo"].iloc[-1] == "mean"  # seven photos and their mean
    assert (gray["model_delta_e2000"] > 0).all() and (gray["gray_colorfulness_pred"] < 0.5).all()
    rows = gray.iloc[:-1]
    assert list(rows["beats_gray"]) == list(rows["model_delta_e2000"] < rows["gray_delta_e2000"])


def test_a_landscape_spec_is_named_and_split_by_its_catalogue():
    spec = DatasetSpec("landscapes", image_size=16, crops_per_photo=2, val_photos=3)
    assert spec.name == "landscapes" and spec.settings.val_photos == 3
