"""A folder of the user's colour photos (`data.train_dir`), each photo its own scene;
`val_fraction` of them are held out for validation."""

from __future__ import annotations

from pathlib import Path

from colorize import images
from colorize.datasets.photos import DataError, check_folder, folder_photos
from colorize.datasets.sources.base import Source


class Folder(Source):
    name = "folder"
    holds_out_fraction = True

    def check(self, spec):
        if not spec.folder:
            raise DataError("a folder dataset needs its folder (data.train_dir)")

    def photos(self, spec):
        folder = check_folder(spec.folder, "training")
        refs = folder_photos(folder)
        if not refs:
            allowed = ", ".join(images.IMAGE_EXTENSIONS)
            raise DataError(f"training folder {folder} holds no image files ({allowed})")
        return refs

    def what(self, spec):
        return f"training folder {self.name_of(spec)}"

    def name_of(self, spec):
        return str(Path(spec.folder).expanduser())

    def located(self, spec, photo):
        return str(Path(spec.folder).expanduser() / photo)

    def origin(self, spec):
        path = self.name_of(spec)
        return {"name": Path(path).name, "type": "local", "location": {"path": path}}


SOURCE = Folder()
