"""API keys: bearer tokens from a file (one per line, reloaded on SIGHUP), from
``LEGATO_API_KEYS`` (comma-separated) or given in code, compared in constant time.

With no key at all, every request is let in (and the server binds to loopback only unless told
``insecure``: see :mod:`legato.serve.server`).
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from legato.errors import ConfigError

ENV = "LEGATO_API_KEYS"


def read_key_file(path: Path) -> list[str]:
    """The keys in a file: one per line; blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"api_key_file {path}: cannot read it: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


class Keys:
    """The accepted keys; ``reload()`` reads the file again (a bad file keeps the old keys)."""

    def __init__(self, keys: Iterable[str] = (), *, file: Path | None = None,
                 environ: bool = True) -> None:
        self._given = [key for key in keys if key]
        self.file = file
        self._env = [key.strip() for key in os.environ.get(ENV, "").split(",")
                     if key.strip()] if environ else []
        self._lock = threading.Lock()
        self._keys: tuple[bytes, ...] = ()
        self._keys = self._load()

    def _load(self) -> tuple[bytes, ...]:
        found = [*self._given, *self._env]
        if self.file is not None:
            found += read_key_file(self.file)
        return tuple(dict.fromkeys(key.encode() for key in found))

    def reload(self) -> int:
        """Read the key file again; returns how many keys are accepted now."""
        keys = self._load()
        with self._lock:
            self._keys = keys
        return len(keys)

    @property
    def required(self) -> bool:
        return bool(self._keys) or self.file is not None

    def __len__(self) -> int:
        return len(self._keys)

    def accepts(self, authorization: bytes | None) -> bool:
        """True when the ``Authorization`` header is ``Bearer KEY`` for a known key. Every key
        is compared (in constant time), whichever matches."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(token, key)
        return matched


__all__ = ["ENV", "Keys", "read_key_file"]
