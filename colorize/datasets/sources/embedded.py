"""The embedded photos: colour photos that ship inside installed packages (scikit-image,
scikit-learn, Matplotlib), offline and the default.

Validation holds out whole scenes a person can judge on sight, named here in order
(`data.val_photos=N` takes the first N; more are drawn, seeded, from the rest), so sample strips
show a palace, a cat and a cup of coffee rather than a field of distant galaxies.
"""

from __future__ import annotations

from colorize.datasets.photos import embedded_photos
from colorize.datasets.sources.base import Source


class Embedded(Source):
    name = form = "embedded"
    validation_scenes = ("sklearn:china.jpg", "skimage:chelsea", "skimage:coffee")

    def photos(self, spec):
        return embedded_photos()


SOURCE = Embedded()
