"""A Hugging Face dataset (`hf:<dataset>[:<split>]`, or a folder `save_to_disk` wrote), read
through `colorize.datasets.remote`; each image its own scene, `val_fraction` held out."""

from __future__ import annotations

from pathlib import Path

from colorize.datasets import remote
from colorize.datasets.sources.base import Source


class HuggingFace(Source):
    name = "hf"
    form = "hf:<dataset>[:<split>]"
    prefixed = holds_out_fraction = True

    def check(self, spec):
        remote.parse_hf(spec.source)

    def photos(self, spec):
        return remote.hf_photos(spec.source).refs

    def what(self, spec):
        return f"Hugging Face dataset {spec.source.removeprefix(remote.HF_PREFIX)}"

    def origin(self, spec):
        """The dataset's path, split and revision (as MLflow's Hugging Face source holds them),
        its `datasets` fingerprint and image column."""
        photos = remote.hf_photos(spec.source)
        name = Path(photos.name).name if remote.parse_hf(spec.source).local else photos.name
        location = {
            "path": photos.name,
            "split": photos.split,
            "revision": photos.revision,
            "fingerprint": photos.fingerprint,
            "image_column": photos.column,
        }
        return {"name": f"{name}:{photos.split}", "type": "hugging_face", "location": location}

    def key_material(self, spec):
        return {"revision": remote.hf_photos(spec.source).revision}  # another revision: new data


SOURCE = HuggingFace()
