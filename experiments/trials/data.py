"""A study's photos, from its configuration: the dataset's content key (cheap: no photo is
decoded), the dataset itself (converted once into the cache under runs_dir), and the test folder.
Data problems are the user's: each becomes a one-line `UsageError`."""

from __future__ import annotations

from pathlib import Path

from colorize.datasets import DataError, DatasetSpec
from experiments.common.errors import UsageError
from experiments.settings.config import RunConfig, arguments


def dataset_spec(cfg: RunConfig) -> DatasetSpec:
    """The dataset the configuration names: its source and every setting that feeds it."""
    return DatasetSpec(**arguments(cfg, "dataset"))


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
        """The dataset's name, MLflow source type and source, from its data source's origin
        (`colorize.datasets.sources`); an origin MLflow has a form for is written in it."""
        origin = self.spec.origin.origin(self.spec)
        location = origin["location"]
        in_mlflow = _MLFLOW_FORMS.get(origin["type"])
        if in_mlflow is not None:
            location = in_mlflow(location)
        return origin["name"], origin["type"], location

    def load(self):
        """The dataset, converted to LAB once and memory-mapped from `<runs_dir>/cache`."""
        from colorize.cache import load_dataset_cached

        cache = Path(self.cfg.runs_dir).expanduser() / "cache"
        try:
            return load_dataset_cached(cache, self.spec, refs=self.refs)
        except DataError as error:
            raise UsageError(str(error)) from None


def _hugging_face(location: dict) -> dict:
    """A Hub dataset as MLflow's `HuggingFaceDatasetSource` (path, split, revision) writes it,
    with what it lacks (the `datasets` fingerprint, the image column)."""
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    known = ("path", "split", "revision")
    source = HuggingFaceDatasetSource(**{key: location[key] for key in known})
    return source.to_dict() | {k: v for k, v in location.items() if k not in known}


# Origin types (`Source.origin`'s `type`) that MLflow has its own dataset source for.
_MLFLOW_FORMS = {"hugging_face": _hugging_face}


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
