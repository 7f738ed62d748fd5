"""Photos from elsewhere: a Hugging Face dataset (`hf:<dataset>[:<split>]`, or a folder that
`datasets.Dataset.save_to_disk` wrote, `hf:/path/to/dir`) or a tar or zip archive of photos at a
URL, pinned by its SHA-256 (`url:https://.../photos.zip#sha256=<64 hex>`).

Both become a list of `PhotoRef`s, like a folder, so they go through the same builder, split and
cache. An archive is downloaded once with `pooch` (with a progress bar; refused when its SHA-256
differs) into `<cache>/archives` and unpacked beside it; a Hub dataset is cached by `datasets`.
Once cached, both run offline. `datasets` and `pooch` are imported only here, only when such a
source is used (`pip install -e ".[hf]"`); anything missing is a one-line `DataError`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from colorize import images
from colorize.cache_root import cache_root
from colorize.datasets.photos import DataError, PhotoRef, folder_photos
from colorize.locks import exclusive

HF_PREFIX = "hf:"
URL_PREFIX = "url:"
INSTALL_HINT = 'pip install -e ".[hf]"'
_URL = re.compile(r"^url:(?P<url>https?://[^#\s]+)#sha256=(?P<sha256>[0-9a-fA-F]{64})$")
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_COMPLETE = ".complete"  # written last into an unpacked archive's folder


# --- Hugging Face ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class HfSource:
    """`hf:<dataset>[:<split>]`: a Hub dataset id, or a local folder from `save_to_disk`."""

    dataset: str
    split: str | None

    @property
    def local(self) -> bool:
        return self.dataset.startswith(("/", "./", "../", "~"))


def parse_hf(source: str) -> HfSource:
    body = source.removeprefix(HF_PREFIX)
    dataset, split = body, None
    head, sep, tail = body.rpartition(":")
    if sep and tail and "/" not in tail:
        dataset, split = head, tail
    if not dataset or any(c.isspace() for c in body):
        raise DataError(
            f"data.source={source} is not a Hugging Face dataset: write hf:<dataset>[:<split>] "
            "(e.g. hf:user/photos:train) or hf:/path/to/saved/dataset"
        )
    return HfSource(dataset, split)


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise DataError(f"data.source=hf:... needs the datasets package: {INSTALL_HINT}") from None
    datasets.logging.set_verbosity_error()
    return datasets


@dataclass
class HfPhotos:
    """A Hugging Face dataset's images as photos, and what identifies the dataset."""

    name: str
    split: str
    revision: str | None
    fingerprint: str
    column: str
    refs: list[PhotoRef] = field(default_factory=list)


def _pick_split(loaded, source: HfSource, what: str):
    datasets = _import_datasets()
    if isinstance(loaded, datasets.Dataset):
        return loaded, source.split or str(loaded.split or "train")
    names = list(loaded)
    split = source.split or ("train" if "train" in names else names[0] if len(names) == 1 else "")
    if split not in names:
        raise DataError(f"{what} has splits {', '.join(names)}: name one, e.g. hf:...:{names[0]}")
    return loaded[split], split


def _image_column(ds, what: str) -> str:
    datasets = _import_datasets()
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            return name
    raise DataError(f"{what} has no image column (columns: {', '.join(ds.column_names)})")


@functools.lru_cache(maxsize=4)  # listed once per process; the cache key reads it again
def hf_photos(source_text: str) -> HfPhotos:
    """The images of a Hugging Face dataset split as photos (each its own scene), hashed from
    their encoded bytes; decoded only when the builder reads them.

    Raises:
        DataError: `datasets` missing, the dataset or split not found (or not reachable and
            not cached), or no image column.
    """
    source = parse_hf(source_text)
    datasets = _import_datasets()
    what = f"Hugging Face dataset {source.dataset}"
    revision = None
    try:
        if source.local:
            path = Path(source.dataset).expanduser()
            if not path.is_dir():
                raise DataError(f"{what}: no folder saved by datasets at {path}")
            loaded = datasets.load_from_disk(str(path))
        else:
            builder = datasets.load_dataset_builder(source.dataset)
            revision = builder.hash if isinstance(builder.hash, str) else None
            builder.download_and_prepare()
            loaded = (
                builder.as_dataset(split=source.split) if source.split else builder.as_dataset()
            )
    except DataError:
        raise
    except Exception as error:  # network, missing dataset, bad split: many types
        first = (str(error).splitlines() or [type(error).__name__])[0][:240]
        raise DataError(
            f"cannot load {what}: {first} (a Hub dataset needs the internet once, then its cache)"
        ) from None
    ds, split = _pick_split(loaded, source, what)
    column = _image_column(ds, what)
    raw = ds.cast_column(column, datasets.Image(decode=False))
    refs = []
    for index, row in enumerate(raw.select_columns([column])):
        item = row[column] or {}
        content = item.get("bytes")
        if content is None and item.get("path"):
            content = Path(item["path"]).read_bytes()
        name = f"{split}/{index:06d}"
        if not content:
            refs.append(PhotoRef(name, name, "", problem="no image in this row"))
            continue
        refs.append(
            PhotoRef(
                name,
                name,
                hashlib.sha256(content).hexdigest(),
                loader=lambda i=index: _read_row(raw, column, i, f"{what} {split}/{i:06d}"),
            )
        )
    return HfPhotos(source.dataset, split, revision, ds._fingerprint, column, refs)


def _read_row(raw, column: str, index: int, name: str):
    item = raw[index][column]
    content = item.get("bytes") or Path(item["path"]).read_bytes()
    return images.read_rgb(io.BytesIO(content), name=name)


# --- an archive at a URL --------------------------------------------------------------------------
@dataclass(frozen=True)
class UrlSource:
    url: str
    sha256: str

    @property
    def file_name(self) -> str:
        """The archive's file name in the cache: its SHA-256 prefix and its URL's file name."""
        base = Path(self.url.split("?")[0]).name or "archive"
        return f"{self.sha256[:16]}-{base}"


def parse_url(source: str) -> UrlSource:
    match = _URL.match(source)
    if not match:
        raise DataError(
            f"data.source={source} is not an archive URL: write "
            "url:<http(s)://...tar or zip>#sha256=<its 64 hex SHA-256>"
        )
    return UrlSource(match["url"], match["sha256"].lower())


def archives_dir() -> Path:
    """`$COLORIZE_CACHE/archives`, default `~/.cache/colorize-studies/archives`."""
    return cache_root() / "archives"


def _download(source: UrlSource, folder: Path) -> Path:
    try:
        import pooch
    except ImportError:
        raise DataError(f"data.source=url:... needs the pooch package: {INSTALL_HINT}") from None
    try:
        return Path(
            pooch.retrieve(
                source.url,
                known_hash=f"sha256:{source.sha256}",
                fname=source.file_name,
                path=folder,
                progressbar=True,
            )
        )
    except ValueError as error:  # pooch: the SHA-256 differs
        if "hash" in str(error).lower():
            raise DataError(
                f"the archive at {source.url} is not the one asked for: its SHA-256 differs from "
                f"{source.sha256} (refused; fix the URL or the #sha256=)"
            ) from None
        raise DataError(f"cannot download {source.url}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # requests' connection and HTTP errors, OSError
        first = (str(error).splitlines() or [type(error).__name__])[0][:200]
        raise DataError(
            f"cannot download {source.url}: {first} (it needs the internet once, then it is "
            f"read from {folder})"
        ) from None


def _unpack(archive: Path, target: Path) -> None:
    """Unpack a zip or tar into `target` (via a temporary folder, renamed when complete);
    members that would land outside it are refused."""
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                for member in handle.namelist():
                    if Path(member).is_absolute() or ".." in Path(member).parts:
                        raise DataError(f"{archive}: member {member} would unpack outside it")
                handle.extractall(work)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                try:
                    handle.extractall(work, filter="data")
                except tarfile.FilterError as error:
                    raise DataError(f"{archive}: {error}") from None
        else:
            raise DataError(
                f"{archive} is neither a zip nor a tar archive ({', '.join(_ARCHIVES)})"
            )
        (work / _COMPLETE).write_text(archive.name)
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def url_folder(source_text: str) -> Path:
    """The folder an archive was unpacked into, downloading and unpacking it first if needed.

    Raises:
        DataError: pooch missing, no network (and nothing cached), a SHA-256 mismatch, or not
            an archive.
    """
    source = parse_url(source_text)
    folder = archives_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.sha256[:16]}-photos"
    if (target / _COMPLETE).is_file():
        return target
    with exclusive(folder / f"{source.sha256[:16]}.lock"):  # parallel workers download once
        if not (target / _COMPLETE).is_file():
            _unpack(_download(source, folder), target)
    return target


def url_photos(source_text: str) -> tuple[Path, list[PhotoRef]]:
    """The photos of an archive (as a folder's: each file its own scene)."""
    folder = url_folder(source_text)
    refs = [ref for ref in folder_photos(folder) if ref.name != _COMPLETE]
    if not refs:
        raise DataError(f"the archive of {parse_url(source_text).url} holds no image files")
    return folder, refs
