"""The landscape wallpapers of Debian's desktop packages (`colorize.datasets.landscapes`): 30
photographs to train and validate on, and 7 fixed test photographs never trained on."""

from __future__ import annotations

from colorize.datasets.sources.base import Source


class Landscapes(Source):
    name = form = "landscapes"
    test_set = "landscape test photos"

    def photos(self, spec):
        from colorize.datasets.landscapes import landscape_photos

        return landscape_photos("train")

    def test_photos(self, spec):
        from colorize.datasets.landscapes import landscape_photos

        return landscape_photos("test")

    def origin(self, spec):
        from colorize.datasets.landscapes import packages

        found = super().origin(spec)
        found["location"]["debian_packages"] = packages()
        return found


SOURCE = Landscapes()
