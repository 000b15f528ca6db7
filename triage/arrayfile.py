"""A plain-data file: a JSON header plus raw numpy arrays, read back memory-mapped.

Loading needs only numpy (no pickle, so no scikit-learn and no code runs from the file), and the
arrays are read-only views of the mapped file: a process touches only the pages it reads, so a large
weight matrix costs memory only for the rows a ticket's terms select.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
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


def read_arrays(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by `write_arrays`; the arrays are read-only and memory-mapped."""
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
    arrays = {}
    for name, (dtype_text, shape, offset) in header["arrays"].items():
        dtype = np.dtype(dtype_text)
        count = int(np.prod(shape, dtype=np.int64))
        if start + offset + count * dtype.itemsize > size:
            raise ArrayFileError(f"{path}: array {name!r} runs past the end of the file")
        if count == 0:
            arrays[name] = np.zeros(shape, dtype=dtype)
            continue
        arrays[name] = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + offset).reshape(shape)
    return header["meta"], arrays
