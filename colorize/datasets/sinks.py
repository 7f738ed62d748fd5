"""Where the dataset builder writes its arrays: into memory, or into `.npy` files with a CRC-32 of
every byte (the cache). Both take rows block by block, so a build never holds the whole dataset
twice."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import numpy as np

# array name -> (dtype, channels); every array is (rows, size, size, channels). A target holds
# a, b and the accuracy label side by side: a batch of targets is one gather, not three.
ARRAYS = {
    "train_l": (np.uint8, 1),
    "train_target": (np.int8, 3),
    "val_l": (np.uint8, 1),
    "val_target": (np.int8, 3),
}


def shapes(rows: dict[str, int], size: int) -> dict[str, tuple[int, ...]]:
    """Each array's shape for `rows` ({"train": n, "val": m}) at image side `size`."""
    return {
        name: (rows[name.split("_")[0]], size, size, channels)
        for name, (_, channels) in ARRAYS.items()
    }


class MemorySink:
    """Arrays in memory, filled in order."""

    def __init__(self, rows: dict[str, int], size: int):
        self.arrays = {
            name: np.empty(shape, dtype=ARRAYS[name][0])
            for name, shape in shapes(rows, size).items()
        }
        self._filled = dict.fromkeys(self.arrays, 0)

    def write(self, name: str, block: np.ndarray) -> None:
        start = self._filled[name]
        self.arrays[name][start : start + len(block)] = block
        self._filled[name] = start + len(block)

    def close(self) -> dict[str, np.ndarray]:
        return self.arrays


class NpyWriter:
    """Writes a `.npy` file block by block with plain file writes (no mapping, so the pages
    written never count in this process's RSS), keeping a CRC-32 of every byte."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), tuple(int(s) for s in shape)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": self.shape,
            },
        )
        self.handle = open(path, "wb")  # noqa: SIM115  (closed in close())
        self.crc = 0
        self.rows = 0
        self._write(header.getvalue())

    def _write(self, data) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.handle.write(data)

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path.name}: rows of shape {rows.shape[1:]} != {self.shape}")
        self._write(memoryview(rows).cast("B"))
        self.rows += len(rows)

    def close(self) -> dict:
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.path.name}: wrote {self.rows} rows of {self.shape[0]}")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return {
            "file": self.path.name,
            "shape": list(self.shape),
            "dtype": self.dtype.str,
            "bytes": self.path.stat().st_size,
            "crc32": self.crc,
        }


class NpySink:
    """One `.npy` file per array in `folder`; `close` describes each (shape, dtype, CRC-32)."""

    def __init__(self, folder: Path, rows: dict[str, int], size: int):
        self.writers = {
            name: NpyWriter(folder / f"{name}.npy", ARRAYS[name][0], shape)
            for name, shape in shapes(rows, size).items()
        }

    def write(self, name: str, block: np.ndarray) -> None:
        self.writers[name].write(block)

    def close(self) -> dict[str, dict]:
        return {name: writer.close() for name, writer in self.writers.items()}
