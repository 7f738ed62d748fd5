"""The landscape dataset: real landscape and nature photographs from Debian's desktop-wallpaper
packages, listed by package, file, SHA-256 and licence in `landscapes.tsv` (37 photographs: 18
landscapes and 19 nature close-ups; drawings, renders and abstract art left out).

Seven of them (marked `test`) are a fixed whole-photo test set, never trained or validated on.
The photos are read where the packages installed them, or from a cache the `.deb` files are
unpacked into without root (`apt-get download` them into `<cache>/debs`; `cache_dir()` says
where). Neither is possible: one line says what to run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from colorize import images
from colorize.cache_root import cache_root
from colorize.datasets.photos import DataError, PhotoRef

CATALOGUE = Path(__file__).with_name("landscapes.tsv")
NAME = "landscapes"
INSTALLED_ROOT = Path("/")


@dataclass(frozen=True)
class Entry:
    package: str
    version: str
    path: str
    sha256: str
    split: str
    licence: str
    author: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.package}:{self.path}"


def catalogue() -> list[Entry]:
    with open(CATALOGUE, newline="") as handle:
        return [
            Entry(
                row["package"],
                row["version"],
                row["path"],
                row["sha256"],
                row["split"],
                row["licence"],
                row["author"],
                row["kind"],
            )
            for row in csv.DictReader(handle, delimiter="\t")
        ]


def packages() -> list[str]:
    return sorted({entry.package for entry in catalogue()})


def cache_dir() -> Path:
    """`$COLORIZE_CACHE/landscapes`, default `~/.cache/colorize-studies/landscapes`."""
    return cache_root() / NAME


def _deb_members(deb: Path) -> dict[str, bytes]:
    """The files of a `.deb` (an ar archive around data.tar.*), as {path: content}."""
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise DataError(f"{deb} is not a Debian package")
        while header := handle.read(60):
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            body = handle.read(size + size % 2)[:size]
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                    return {
                        member.name.removeprefix("./"): archive.extractfile(member).read()
                        for member in archive.getmembers()
                        if member.isfile()
                    }
    raise DataError(f"{deb} holds no data archive")


def _unpack(package: str, wanted: list[Entry], root: Path) -> bool:
    """Unpack `wanted` files of `package` from a downloaded `.deb` in the cache."""
    debs = sorted((cache_dir() / "debs").glob(f"{package}_*.deb"))
    if not debs:
        return False
    members = _deb_members(debs[-1])
    for entry in wanted:
        if entry.path in members:
            target = root / package / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(members[entry.path])
    return all((root / package / entry.path).is_file() for entry in wanted)


def locate() -> dict[str, Path]:
    """Each catalogued photo's file (installed, or unpacked into the cache).

    Raises:
        DataError: packages neither installed nor downloaded; says how to get them.
    """
    root = cache_dir() / "root"
    found, missing = {}, []
    for package in packages():
        entries = [e for e in catalogue() if e.package == package]
        installed = [INSTALLED_ROOT / e.path for e in entries]
        cached = [root / package / e.path for e in entries]
        if all(path.is_file() for path in installed):
            found |= {e.name: path for e, path in zip(entries, installed, strict=True)}
        elif all(p.is_file() for p in cached) or _unpack(package, entries, root):
            found |= {e.name: path for e, path in zip(entries, cached, strict=True)}
        else:
            missing.append(package)
    if missing:
        listed = " ".join(missing)
        raise DataError(
            f"the landscape photos need the Debian packages {listed}: run `sudo apt-get install "
            f"{listed}`, or without root `mkdir -p {cache_dir() / 'debs'} && cd "
            f"{cache_dir() / 'debs'} && apt-get download {listed}`"
        )
    return found


def _checked_reader(path: Path, sha256: str):
    def read():
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != sha256:
            raise images.UnreadableImage(
                f"{path}: differs from the catalogued file (another package version?)"
            )
        return images.read_rgb(io.BytesIO(content), name=str(path))

    return read


def landscape_photos(split: str = "train") -> list[PhotoRef]:
    """The catalogued photos of `split` (`train`: training and validation; `test`)."""
    files = locate()
    return [
        PhotoRef(
            e.name,
            e.name,
            e.sha256,
            files[e.name],
            loader=_checked_reader(files[e.name], e.sha256),
        )
        for e in catalogue()
        if e.split == split
    ]
