"""A saved model as a joblib pickle plus a plain-array form beside it; readers prefer the arrays.

The pickle serves training tools and older versions; the arrays (triage/arrayfile.py) load with numpy
alone. The arrays carry the (mtime, size) of the pickle they were made from: when the pickle is newer
(written by a version without arrays, or a save cut short, or another process's retrain), the reader
loads the pickle (scikit-learn) and writes its arrays, so the next load and the next start skip it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from triage.arrayfile import read_arrays, write_arrays

logger = logging.getLogger(__name__)

STAMP_KEY = "_pickle"  # meta key: [mtime_ns, size] of the pickle the arrays were made from
PlainForm = tuple[dict[str, Any], dict[str, Any]]


class PickleWithArrays:
    def __init__(
        self,
        pickle_path: str,
        arrays_path: str,
        to_arrays: Callable[[Any], PlainForm | None],
        from_arrays: Callable[[dict[str, Any], dict[str, Any]], Any],
        rows_on_demand: tuple[str, ...] = (),
        mmap_pickle: bool = False,
    ) -> None:
        self.path, self.arrays_path = pickle_path, arrays_path
        self._to_arrays, self._from_arrays = to_arrays, from_arrays
        self._rows_on_demand, self._mmap_pickle = rows_on_demand, mmap_pickle
        self._lock = threading.Lock()
        self._loaded: tuple[tuple, Any] | None = None

    def save(self, saved: Any) -> None:
        """The pickle, then the arrays made from it (each written atomically)."""
        import joblib

        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        os.close(handle)
        joblib.dump(saved, temporary)
        os.replace(temporary, self.path)  # readers see the old or the new file, never half of one
        self._write_arrays(saved, _stamp(self.path))

    def remove(self) -> None:
        for path in (self.arrays_path, self.path):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def load(self) -> Any | None:
        """The saved object, read again only when a file changed; None when nothing is saved."""
        with self._lock:
            version = (_stamp(self.arrays_path), _stamp(self.path))
            if version == (None, None):
                return None
            if self._loaded is None or self._loaded[0] != version:
                self._loaded = (version, self._read(version[1]))
            return self._loaded[1]

    def _read(self, pickle_stamp: list[int] | None) -> Any:
        if os.path.exists(self.arrays_path):
            try:
                meta, arrays = read_arrays(self.arrays_path, self._rows_on_demand)
                if pickle_stamp is None or meta.get(STAMP_KEY) == pickle_stamp:
                    return self._from_arrays(meta, arrays)
                logger.info("%s was made from an older %s", self.arrays_path, self.path)
            except (ValueError, KeyError, TypeError, OSError):
                logger.exception("%s unreadable", self.arrays_path)
                if pickle_stamp is None:
                    raise
        logger.info("%s has no current plain-array form; loading it with scikit-learn", self.path)
        import joblib

        saved = joblib.load(self.path, mmap_mode="r") if self._mmap_pickle else joblib.load(self.path)
        self._write_arrays(saved, pickle_stamp)
        return saved

    def _write_arrays(self, saved: Any, pickle_stamp: list[int] | None) -> None:
        try:
            plain = self._to_arrays(saved)
            if plain is None:  # settings the arrays cannot express: the pickle alone
                if os.path.exists(self.arrays_path):
                    os.remove(self.arrays_path)
                return
            meta, arrays = plain
            write_arrays(self.arrays_path, {**meta, STAMP_KEY: pickle_stamp}, arrays)
        except Exception:  # noqa: BLE001 - the pickle is saved; readers fall back to it
            logger.exception("writing %s failed", self.arrays_path)


def _stamp(path: str) -> list[int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size]
