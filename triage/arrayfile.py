"""A plain-data file: a JSON header plus raw numpy arrays, read back memory-mapped or row by row.

Loading needs only numpy (no pickle, so no scikit-learn and no code runs from the file). Arrays are
read-only views of the mapped file. The large weight matrices named in `rows_on_demand` also release
their pages after each read, so the process's resident memory does not grow towards the file's size as
more tickets touch more rows (a touched page stays resident, and the kernel maps 64 KB around each).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from collections.abc import Iterable
from typing import Any

import numpy as np

MAGIC = b"HELPDESK-ARRAYS-1\n"
ALIGN = 64


class ArrayFileError(ValueError):
    """The file is not a plain-data file of this version, or is damaged."""


def write_arrays(path: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write `meta` (JSON-serialisable) and `arrays` to `path` atomically (temporary file, then rename)."""
    layout: dict[str, list] = {}
    offset = 0
    contiguous = {}
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects")
        contiguous[name] = array
        layout[name] = [array.dtype.str, list(array.shape), offset]
        offset += -(-array.nbytes // ALIGN) * ALIGN
    header = json.dumps({"meta": meta, "arrays": layout}).encode("utf-8")
    start = -(-(len(MAGIC) + 8 + len(header)) // ALIGN) * ALIGN
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + struct.pack("<Q", len(header)) + header)
            out.write(b"\0" * (start - out.tell()))
            for name, array in contiguous.items():
                out.write(b"\0" * (start + layout[name][2] - out.tell()))
                out.write(array.tobytes())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)  # readers see the old or the new file, never half of one
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class FileRows:
    """A 2-D array left in its mapped file; `rows[columns]` copies just those rows and then hands the
    mapped pages back (MADV_DONTNEED: they stay in the page cache, not in this process's resident set)."""

    def __init__(self, mapped: mmap.mmap, offset: int, dtype: np.dtype, shape: tuple[int, int]) -> None:
        self.shape, self.dtype = shape, dtype
        count = shape[0] * shape[1]
        self._array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape)
        self._mapped = mapped
        self._start = offset - offset % mmap.PAGESIZE
        self._length = offset + count * dtype.itemsize - self._start

    def __getitem__(self, columns: np.ndarray) -> np.ndarray:
        rows = self._array[np.asarray(columns, dtype=np.int64)]  # fancy indexing: a copy
        self._mapped.madvise(mmap.MADV_DONTNEED, self._start, self._length)
        return rows


def release_pages(*arrays: np.ndarray) -> None:
    """Hand the pages of memory-mapped arrays back to the page cache (MADV_DONTNEED); others: nothing."""
    for array in arrays:
        base: Any = array
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        if isinstance(base, memoryview):  # np.frombuffer(mapping) keeps a memoryview of it
            base = base.obj
        if not isinstance(base, mmap.mmap) or array.nbytes == 0:
            continue
        offset = array.ctypes.data - np.frombuffer(base, dtype=np.uint8, count=1).ctypes.data
        start = offset - offset % mmap.PAGESIZE
        base.madvise(mmap.MADV_DONTNEED, start, offset + array.nbytes - start)


def read_arrays(path: str, rows_on_demand: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, arrays) of a file written by `write_arrays`: read-only and memory-mapped, except the 2-D
    arrays named in `rows_on_demand`, which stay in the file as `FileRows`."""
    on_demand = set(rows_on_demand)
    with open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        if size < len(MAGIC) + 8 or source.read(len(MAGIC)) != MAGIC:
            raise ArrayFileError(f"{path}: not a plain-data model file")
        (length,) = struct.unpack("<Q", source.read(8))
        if length > size:
            raise ArrayFileError(f"{path}: damaged header")
        header = json.loads(source.read(length).decode("utf-8"))
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
    start = -(-(len(MAGIC) + 8 + length) // ALIGN) * ALIGN
    arrays: dict[str, Any] = {}
    for name, (dtype_text, shape, offset) in header["arrays"].items():
        dtype = np.dtype(dtype_text)
        count = int(np.prod(shape, dtype=np.int64))
        if start + offset + count * dtype.itemsize > size:
            raise ArrayFileError(f"{path}: array {name!r} runs past the end of the file")
        if count == 0:
            arrays[name] = np.zeros(shape, dtype=dtype)
            continue
        if name in on_demand and len(shape) == 2:
            arrays[name] = FileRows(mapped, start + offset, dtype, (shape[0], shape[1]))
            continue
        arrays[name] = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + offset).reshape(shape)
    return header["meta"], arrays
