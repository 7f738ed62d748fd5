"""Photos from a Hugging Face dataset (`data.source=hf:`) and from an archive at a URL
(`data.source=url:...#sha256=`), without the internet: a dataset built and saved here with
`datasets`, and a zip served on loopback by a real HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from colorize.datasets import DataError, DatasetSpec, source_photos
from experiments.common.errors import UsageError
from experiments.settings.config import compose
from tests.studies_helpers import mlflow_runs, run_cli

PHOTOS = 6
SMOKE = ("study=optimizers", "profile=smoke", "n_trials=1")


@pytest.fixture(scope="module")
def small_photos(tmp_path_factory):
    """Six embedded photos as small PNG files."""
    from colorize.datasets import embedded_arrays
    from tests.conftest import write_photo

    folder = tmp_path_factory.mktemp("photos")
    arrays = embedded_arrays()
    return [
        write_photo(folder / f"photo{i}.png", arrays[name], size=24)
        for i, name in enumerate(sorted(arrays)[:PHOTOS])
    ]


@pytest.fixture(scope="module")
def saved_hf_dataset(small_photos, tmp_path_factory) -> Path:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path_factory.mktemp("hf") / "photos"
    ds = datasets.Dataset.from_dict(
        {"image": [str(p) for p in small_photos], "caption": [p.stem for p in small_photos]}
    ).cast_column("image", datasets.Image())
    datasets.DatasetDict({"train": ds}).save_to_disk(str(folder))
    return folder


@pytest.fixture
def archive_server(small_photos, tmp_path):
    """A zip of the photos served by `http.server` on 127.0.0.1: (url, sha256, server)."""
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "photos.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in small_photos:
            handle.write(path, f"photos/{path.name}")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # no request lines among the command's output
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/photos.zip"
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    try:
        yield url, sha256, server
    finally:
        server.shutdown()
        server.server_close()


def _dataset_inputs(runs_dir: Path, study: str):
    runs = mlflow_runs(runs_dir, study)
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    return runs, {
        run_id: [entry.dataset for entry in client.get_run(run_id).inputs.dataset_inputs]
        for run_id in runs["run_id"]
    }


def test_smoke_study_on_a_saved_hugging_face_dataset_logs_it(saved_hf_dataset, tmp_path):
    runs_dir = tmp_path / "runs"
    result = run_cli(
        *SMOKE, f"data.source=hf:{saved_hf_dataset}", "tracking.system_metrics=false",
        f"runs_dir={runs_dir}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs, inputs = _dataset_inputs(runs_dir, "optimizers")
    assert len(runs) == 2  # the study run and its one trial
    for datasets in inputs.values():
        (dataset,) = datasets
        assert dataset.source_type == "hugging_face"
        assert dataset.name == "photos:train"
        assert f'"path": "{saved_hf_dataset}"' in dataset.source
        assert '"split": "train"' in dataset.source
    trial = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    assert trial["params.source"] == f"hf:{saved_hf_dataset}"
    assert not [c for c in runs.columns if c.startswith("metrics.system/")]  # turned off


def test_smoke_study_on_an_archive_served_on_loopback_logs_it_then_runs_offline(
    archive_server, tmp_path, monkeypatch
):
    url, sha256, server = archive_server
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    source = f"url:{url}#sha256={sha256}"
    runs_dir = tmp_path / "runs"
    result = run_cli(*SMOKE, f"data.source={source}", f"runs_dir={runs_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    runs, inputs = _dataset_inputs(runs_dir, "optimizers")
    assert len(runs) == 2
    for datasets in inputs.values():
        (dataset,) = datasets
        assert dataset.source_type == "http" and dataset.name == "photos.zip"
        assert url in dataset.source and sha256 in dataset.source
    trial = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    assert trial["metrics.system/system_memory_usage_megabytes"] > 0
    # downloaded once: with the server gone, the same source is read from the cache
    server.shutdown()
    server.server_close()
    refs = source_photos(DatasetSpec(source=source))
    assert sorted(ref.name for ref in refs) == [f"photos/photo{i}.png" for i in range(PHOTOS)]


def test_an_archive_whose_sha256_differs_is_refused_in_one_line(
    archive_server, tmp_path, monkeypatch
):
    url, sha256, _ = archive_server
    wrong = "0" * 64
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    result = run_cli(  # new: its whole stderr, as the download library's own logger writes it
        *SMOKE, f"data.source=url:{url}#sha256={wrong}", f"runs_dir={tmp_path}/r", fresh=True
    )
    assert result.returncode == 2, result.stderr[-2000:]
    # the whole stderr: the download's progress, then one error line, and nothing else
    *progress, last = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert last.startswith("error:") and "SHA-256 differs" in last and "refused" in last
    assert progress[0].startswith(f"Downloading data from '{url}'"), result.stderr[-2000:]
    assert all("B/s]" in line for line in progress[1:]), result.stderr[-2000:]
    assert not list((tmp_path / "cache" / "archives").glob("*-photos"))  # nothing unpacked


def test_unreachable_archive_or_dataset_is_one_line_saying_what_is_missing(tmp_path, monkeypatch):
    from tests.servers import free_port

    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    nowhere = f"url:http://127.0.0.1:{free_port()}/photos.tar.gz#sha256={'a' * 64}"
    with pytest.raises(DataError, match=r"cannot download .*needs the internet once") as error:
        source_photos(DatasetSpec(source=nowhere))
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="no folder saved by datasets") as error:
        source_photos(DatasetSpec(source=f"hf:{tmp_path / 'missing'}"))
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the extra were not installed
    with pytest.raises(DataError, match=r'needs the datasets package: pip install -e "\.\[hf\]"'):
        source_photos(DatasetSpec(source="hf:/elsewhere/photos"))


@pytest.mark.parametrize(
    "source, message",
    [
        ("url:http://example.org/photos.zip", "#sha256=<its 64 hex SHA-256>"),
        ("url:http://example.org/photos.zip#sha256=abc", "#sha256=<its 64 hex SHA-256>"),
        ("url:ftp://example.org/photos.zip#sha256=" + "a" * 64, "url:<http(s)://"),
        ("hf::train", "hf:<dataset>[:<split>]"),
        ("flickr", "hf:<dataset>[:<split>], url:<http(s)://...archive>#sha256=<hex>"),
    ],
)
def test_malformed_remote_sources_are_refused_with_the_form_to_write(source, message):
    with pytest.raises(UsageError, match="data.source") as error:
        compose([f"data.source={source}"])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_archive_sha256_is_part_of_the_dataset_source():
    """Two archives at one address but of different content are two studies: the fingerprint
    built for each (as a study run builds it) differs, and names data.source as the change."""
    from experiments.settings.fingerprint import make_fingerprint
    from experiments.settings.study_spec import load_study

    spec = load_study("optimizers")
    prints = []
    for digit in "ab":
        cfg, profile = compose(
            ["study=optimizers", f"data.source=url:http://h/p.zip#sha256={digit * 64}"]
        )
        prints.append(make_fingerprint(cfg, spec, profile.epoch_scale, "k" * 16))
    one, two = prints
    assert one.hash != two.hash
    assert two.differences(one.values) == [
        f"data.source url:http://h/p.zip#sha256={'a' * 64} -> url:http://h/p.zip#sha256={'b' * 64}"
    ]
