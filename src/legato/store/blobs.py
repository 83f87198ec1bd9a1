"""The content-addressed blob store: a value's bytes, kept once, under their digest.

A local directory by default (``.legato/blobs/ab/cdef...``); any fsspec URL
(``s3://bucket/legato``, ``memory://legato``) for an object store, with fsspec and its
filesystem installed. A local blob is written to a temporary file and renamed into place, so a
reader never sees half a blob, and a write that fails (a full disk) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from legato.errors import StoreError
from legato.values import digest

_KNOWN = 100_000  # digests remembered as written, to skip asking the disk again


class Blobs:
    """Put and get blobs by digest, in a local directory or an fsspec location."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._fs: Any = None
        self._root: Path | None = None
        if "://" in self.location and not self.location.startswith("file://"):
            try:
                import fsspec
            except ImportError as exc:
                raise StoreError(f"the blob store {self.location} needs fsspec: "
                                 "pip install fsspec (and the filesystem's package)") from exc
            self._fs, self._path = fsspec.core.url_to_fs(self.location)
        else:
            self._root = Path(self.location.removeprefix("file://"))
        self._known: set[str] = set()

    def put(self, data: bytes) -> str:
        """Store ``data`` (if it is not there already); return its digest."""
        key = digest(data)
        if key in self._known:
            return key
        try:
            if self._root is not None:
                self._put_file(key, data)
            else:
                path = self._remote(key)
                if not self._fs.exists(path):
                    self._fs.pipe_file(path, data)
        except OSError as exc:
            raise StoreError(f"could not write blob {key} to {self.location}: {exc}; free some "
                             "space or point the store elsewhere (LEGATO_HOME)") from exc
        if len(self._known) >= _KNOWN:
            self._known.clear()
        self._known.add(key)
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; StoreError when there are none."""
        try:
            if self._root is not None:
                return self._file(key).read_bytes()
            data: bytes = self._fs.cat_file(self._remote(key))
            return data
        except (OSError, KeyError) as exc:
            raise StoreError(f"blob {key} is missing from {self.location}: {exc}") from exc

    def size(self, key: str) -> int:
        """Bytes stored under ``key`` (0 when missing)."""
        try:
            if self._root is not None:
                return self._file(key).stat().st_size
            return int(self._fs.size(self._remote(key)))
        except (OSError, KeyError):
            return 0

    def _file(self, key: str) -> Path:
        assert self._root is not None
        return self._root / key[:2] / key[2:]

    def _remote(self, key: str) -> str:
        return f"{self._path.rstrip('/')}/{key[:2]}/{key[2:]}"

    def _put_file(self, key: str, data: bytes) -> None:
        final = self._file(key)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
