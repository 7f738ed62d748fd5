"""A tar or zip archive of photos at a URL, pinned by its SHA-256
(`url:<http(s)://...>#sha256=<hex>`), downloaded once through `colorize.datasets.remote`; each
file its own scene, `val_fraction` held out."""

from __future__ import annotations

from pathlib import Path

from colorize.datasets import remote
from colorize.datasets.sources.base import Source


class Url(Source):
    name = "url"
    form = "url:<http(s)://...archive>#sha256=<hex>"
    prefixed = holds_out_fraction = True

    def check(self, spec):
        remote.parse_url(spec.source)

    def photos(self, spec):
        return remote.url_photos(spec.source)[1]

    def what(self, spec):
        return f"the archive {remote.parse_url(spec.source).url}"

    def origin(self, spec):
        archive = remote.parse_url(spec.source)
        name = Path(archive.url.split("?")[0]).name or archive.url
        return {
            "name": name,
            "type": "http",
            "location": {"url": archive.url, "sha256": archive.sha256},
        }


SOURCE = Url()
