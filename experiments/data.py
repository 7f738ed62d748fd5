"""A study's photos, from its configuration: the dataset's content key (cheap: no photo is
decoded), the dataset itself (converted once into the cache under runs_dir), and the test folder.
Data problems are the user's: each becomes a one-line `UsageError`."""

from __future__ import annotations

from pathlib import Path

from colorize.datasets import DataError, DatasetSpec
from experiments.config import RunConfig, arguments, data_source
from experiments.errors import UsageError


def dataset_spec(cfg: RunConfig) -> DatasetSpec:
    """The dataset the configuration names: its source and every setting that feeds it."""
    return DatasetSpec(
        source=data_source(cfg), folder=cfg.data.train_dir, **arguments(cfg, "dataset")
    )


class StudyData:
    """The study's dataset: listed (and keyed) once, built or read from the cache on `load`."""

    def __init__(self, cfg: RunConfig):
        from colorize.cache import dataset_key
        from colorize.datasets import source_photos

        self.cfg, self.spec = cfg, dataset_spec(cfg)
        try:
            self.refs = source_photos(self.spec)
            self.key = dataset_key(self.spec, self.refs)[0]
        except DataError as error:
            raise UsageError(str(error)) from None

    def record(self, data) -> dict:
        """What the MLflow dataset input of each run says of this dataset."""
        spec = self.spec
        name, source, location = self._origin()
        scenes = {row.get("scene", row["file"]) for row in data.manifest}
        return {
            "name": name,
            "source": source,
            "location": location,
            "key": self.key,
            "counts": {
                "photos": data.num_photos,
                "scenes": len(scenes),
                "train_images": len(data.train_l),
                "val_images": len(data.val_l),
                "image_size": data.image_size,
                "crops_per_photo": spec.crops_per_photo,
                "skipped_grayscale": len(data.skipped.get("grayscale", [])),
                "skipped_unreadable": len(data.skipped.get("unreadable", [])),
            },
        }

    def _origin(self) -> tuple[str, str, dict]:
        """The dataset's name, MLflow source type and source: a Hugging Face dataset as MLflow's
        `HuggingFaceDatasetSource` (path, split, revision), an archive as its `http` source."""
        spec = self.spec
        if spec.kind == "hf":
            from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

            from colorize.datasets.remote import hf_photos, parse_hf

            photos = hf_photos(spec.source)
            hf_source = HuggingFaceDatasetSource(
                path=photos.name, split=photos.split, revision=photos.revision
            )
            location = hf_source.to_dict() | {
                "fingerprint": photos.fingerprint,
                "image_column": photos.column,
            }
            name = Path(photos.name).name if parse_hf(spec.source).local else photos.name
            return f"{name}:{photos.split}", hf_source._get_source_type(), location
        if spec.kind == "url":
            from colorize.datasets.remote import parse_url

            archive = parse_url(spec.source)
            name = Path(archive.url.split("?")[0]).name or archive.url
            return name, "http", {"url": archive.url, "sha256": archive.sha256}
        if spec.source == "folder":
            return Path(spec.name).name, "local", {"path": spec.name}
        location = {"source": spec.source}
        if spec.source == "landscapes":
            from colorize.datasets.landscapes import packages

            location["debian_packages"] = packages()
        return spec.source, spec.source, location

    def load(self):
        """The dataset, converted to LAB once and memory-mapped from `<runs_dir>/cache`."""
        from colorize.cache import load_dataset_cached

        cache = Path(self.cfg.runs_dir).expanduser() / "cache"
        try:
            return load_dataset_cached(cache, self.spec, refs=self.refs)
        except DataError as error:
            raise UsageError(str(error)) from None


def check_test_dir(cfg: RunConfig) -> None:
    """A `data.test_dir` that cannot be read is refused before the first trial."""
    if not cfg.data.test_dir:
        return
    from colorize.datasets import check_folder
    from colorize.datasets.photos import walk_images

    try:
        folder = check_folder(cfg.data.test_dir, "test")
    except DataError as error:
        raise UsageError(f"data.test_dir: {error}") from None
    if not walk_images(folder)[0]:
        raise UsageError(f"data.test_dir: test folder {folder} holds no image files")
