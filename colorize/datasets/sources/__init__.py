"""Where a dataset's photos come from, one source per module, found by name.

Each module of this package that defines `SOURCE` (a `colorize.datasets.sources.base.Source`)
is a source; `data.source` takes the forms they declare. To add one: a module here with its
`SOURCE` (and its test); nothing else changes.

- `embedded` (the default): colour photos shipped inside installed packages, offline.
- `landscapes`: Debian's landscape wallpapers, with a fixed test set.
- `folder`: the user's folder of photos (`data.train_dir`).
- `hf`: a Hugging Face dataset, `hf:<dataset>[:<split>]`.
- `url`: an archive at a URL pinned by its SHA-256, `url:<url>#sha256=<hex>`.
"""

from __future__ import annotations

import importlib
import pkgutil

from colorize.datasets.photos import DataError
from colorize.datasets.sources.base import Source


def _discover() -> dict[str, Source]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        source = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SOURCE", None)
        if isinstance(source, Source):
            found.append(source)
    # Sources named whole first (the default leads), then those taking a `<name>:` prefix.
    found.sort(key=lambda source: (source.prefixed, source.name != "embedded", source.name))
    return {source.name: source for source in found}


SOURCES: dict[str, Source] = _discover()


def register(source: Source) -> Source:
    """Add `source` to the registry (a source defined outside this package); its name must be
    new. Returns it."""
    if not source.name or source.name in SOURCES:
        raise ValueError(f"a data source needs a new name, not {source.name!r}")
    SOURCES[source.name] = source
    return source


def forms() -> tuple[str, ...]:
    """What `data.source` may be: each source's form (a folder is `data.train_dir` instead)."""
    return tuple(source.form for source in SOURCES.values() if source.form)


def find(source: str) -> Source:
    """The source `source` (a `DatasetSpec.source`) names.

    Raises:
        DataError: no source takes it; lists what is allowed.
    """
    for candidate in SOURCES.values():
        if candidate.matches(source):
            return candidate
    allowed = ", ".join(candidate.form or candidate.name for candidate in SOURCES.values())
    raise DataError(f"unknown data source {source!r}; allowed: {allowed}")


__all__ = ["SOURCES", "Source", "find", "forms", "register"]
