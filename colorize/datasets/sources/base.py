"""What a data source is: where a dataset's photos come from, and what it says about them.

A source owns five things, and nothing else in the project branches on it:

- which `data.source` values it takes (`matches`, `form`) and their check (`check`);
- its photos, listed without decoding (`photos`), and the photos people judge a model on
  (`test_photos`): a fixed test set, or by default the validation scenes, never trained on;
- how validation is held out: `val_photos` whole scenes (`validation_scenes` first, in order,
  then a seeded draw) or, where `holds_out_fraction`, `val_fraction` of the scenes;
- how messages name it (`what`, `name_of`, `located`);
- where it comes from, as plain data (`origin`, `key_material`): the harness turns that into its
  tracking records, so this library stays free of them.
"""

from __future__ import annotations

from typing import Protocol

from colorize.datasets.builder import BuildSettings, held_out
from colorize.datasets.photos import PhotoRef


class DatasetSpec(Protocol):
    """What a source reads of a dataset's spec (`colorize.datasets.DatasetSpec`); named here so
    that the sources, which the spec looks up, need nothing of the module that defines it."""

    source: str
    folder: str | None

    @property
    def settings(self) -> BuildSettings: ...

    @property
    def what(self) -> str: ...


class Source:
    """One place photos come from. Subclasses set `name` and override what differs."""

    name: str = ""  # the registry's key, and `DatasetSpec.kind`
    # How `data.source` writes it ("" where another setting chooses it: a folder is
    # `data.train_dir`).
    form: str = ""
    prefixed: bool = False  # chosen as `<name>:...` rather than by its name alone
    holds_out_fraction: bool = False  # validation: `val_fraction` of scenes, not `val_photos`
    validation_scenes: tuple[str, ...] = ()  # held out first, in this order
    # A fixed test set of its own, as messages name it ("landscape test photos"); a study on
    # such a source scores its best model against gray on it. "": `test_photos` are the
    # validation scenes.
    test_set: str = ""

    def matches(self, source: str) -> bool:
        """Whether `source` (a `DatasetSpec.source`) names this source."""
        return source.startswith(f"{self.name}:") if self.prefixed else source == self.name

    def check(self, spec: DatasetSpec) -> None:
        """Raise `DataError` (one line) for a malformed spec, reading no photo."""

    def photos(self, spec: DatasetSpec) -> list[PhotoRef]:
        """The photos the dataset is made of (training and validation), not decoded."""
        raise NotImplementedError

    def test_photos(self, spec: DatasetSpec) -> list[PhotoRef]:
        """Whole photos people judge a model on, none of them trained on: by default the
        validation scenes' photos, as the dataset builder holds them out."""
        return held_out(self.photos(spec), spec.settings, spec.what)

    def what(self, spec: DatasetSpec) -> str:
        """The source as messages name it."""
        return f"the {spec.source} set"

    def name_of(self, spec: DatasetSpec) -> str:
        """The dataset's name (`LabData.name`, the cache's records)."""
        return spec.source

    def located(self, spec: DatasetSpec, photo: str) -> str:
        """A photo's name as warnings and `LabData.skipped` give it (a folder: its path)."""
        return photo

    def origin(self, spec: DatasetSpec) -> dict:
        """Where the photos come from, as plain data: `name` (the dataset's short name),
        `type` (the kind of origin: `local`, `http`, `hugging_face`, or the source's name) and
        `location` (a JSON-able dict saying where)."""
        return {"name": spec.source, "type": spec.source, "location": {"source": spec.source}}

    def key_material(self, spec: DatasetSpec) -> dict:
        """What the cache key needs beyond the photos' names and SHA-256s (a Hub dataset's
        revision); empty where those say it all."""
        return {}
