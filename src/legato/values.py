"""How values become bytes (for the run store and cache keys), and back: explicit formats,
signed pickles.

Each blob starts with one byte naming its format:

- ``m``: msgpack, for plain values (None, bools, numbers, strings, bytes, lists, dicts), with
  extensions for tuples, NumPy arrays and pydantic models (stored as their JSON-mode dump and
  the model's import path; read back with ``model_validate``).
- ``p``: pickle, only for what msgpack cannot hold (a dataclass, a custom class). The pickle
  is preceded by an HMAC-SHA256 of it under the store's own key, and :func:`decode` checks that
  signature before unpickling: a store never unpickles bytes it did not write.

A blob's address is the BLAKE2b digest of its bytes, so the same value is stored once.
:func:`fingerprint` is the digest of a value's form without the signature: it needs no key, so
a backend can compute it where a value lives (a Ray worker), and cache keys are made of it.
Values that cannot be stored at all (a lock, an open file, a Ray object reference) raise
:class:`Unstorable`; the caller records the node without its value.

This module sits low in the layers (it needs only ``errors``), so the engine, the backends and
the store share one definition of a value's form.
"""

from __future__ import annotations

import threading
from typing import Any

from legato.errors import StoreError
from legato.errors import Unstorable as Unstorable  # re-exported: raised here

_MSGPACK, _PICKLE = b"m", b"p"
_TUPLE, _NDARRAY, _PYDANTIC = 1, 2, 3
_SIGNATURE = 32  # bytes of HMAC-SHA256


def digest(data: bytes) -> str:
    """The content address of a blob: 32 hex digits of BLAKE2b."""
    import hashlib  # in the functions that use them: hashlib, hmac, pickle cost 5 ms at import
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_packers = threading.local()  # a msgpack Packer is not safe to share between threads


def _pack(value: Any) -> bytes:
    try:
        pack = _packers.pack
    except AttributeError:
        import msgpack

        pack = _packers.pack = msgpack.Packer(default=_extension, strict_types=True).pack
    data: bytes = pack(value)
    return data


def form(value: Any) -> tuple[bytes, bytes]:
    """A value's format byte and payload: msgpack if it is plain, else a pickle. Raises
    :class:`Unstorable` when it has neither."""
    try:
        return _MSGPACK, _pack(value)
    except (TypeError, ValueError, OverflowError):
        pass  # not plain: pickle it
    if type(value).__module__.partition(".")[0] == "ray":
        raise Unstorable(f"{type(value).__name__} is a Ray reference, not a value")
    import pickle

    try:
        return _PICKLE, pickle.dumps(value, protocol=5)
    except Exception as exc:
        raise Unstorable(f"{type(value).__name__} cannot be pickled: {exc}") from exc


def fingerprint(value: Any) -> str | None:
    """The digest of a value's form, unsigned (None: it has no form). Equal plain values have
    equal fingerprints; a pickled value's is as stable as its pickle."""
    try:
        kind, payload = form(value)
    except Unstorable:
        return None
    return digest(kind + payload)


class Codec:
    """Encodes and decodes values; ``key`` signs and checks pickles (the store's own)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, value: Any) -> bytes:
        """The blob for ``value``; raises :class:`Unstorable` when it has none."""
        kind, payload = form(value)
        if kind == _PICKLE:
            return kind + self._sign(payload) + payload
        return kind + payload

    def decode(self, data: bytes, *, name: str = "blob") -> Any:
        """The value of a blob written by :meth:`encode` (with this store's key)."""
        import msgpack

        kind, payload = data[:1], data[1:]
        if kind == _MSGPACK:
            try:
                return msgpack.unpackb(payload, ext_hook=_from_extension, strict_map_key=False)
            except Exception as exc:
                raise StoreError(f"{name} is not a valid msgpack value: {exc}") from exc
        if kind == _PICKLE:
            import hmac
            import pickle

            signature, pickled = payload[:_SIGNATURE], payload[_SIGNATURE:]
            if not hmac.compare_digest(signature, self._sign(pickled)):
                raise StoreError(f"{name} holds a pickle this store did not write (its signature "
                                 "does not match the store's key); refusing to unpickle it")
            return pickle.loads(pickled)
        raise StoreError(f"{name} has an unknown format byte {kind!r}; it was not written by "
                         "legato's store")

    def _sign(self, payload: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _extension(value: Any) -> Any:
    import msgpack

    if type(value) is tuple:
        return msgpack.ExtType(_TUPLE, msgpack.packb(list(value), default=_extension,
                                                     strict_types=True))
    kind = type(value)
    module = kind.__module__.partition(".")[0]
    if module == "numpy" and kind.__name__ == "ndarray" and not value.dtype.hasobject:
        header = [value.dtype.str, list(value.shape)]
        return msgpack.ExtType(_NDARRAY, msgpack.packb([header, value.tobytes(order="C")]))
    if hasattr(kind, "model_dump") and hasattr(kind, "model_validate"):
        dumped = value.model_dump(mode="json")
        path = f"{kind.__module__}:{kind.__qualname__}"
        return msgpack.ExtType(_PYDANTIC, msgpack.packb([path, dumped]))
    raise TypeError(f"no plain form for {kind.__name__}")


def _from_extension(code: int, data: bytes) -> Any:
    import msgpack

    if code == _TUPLE:
        return tuple(msgpack.unpackb(data, ext_hook=_from_extension, strict_map_key=False))
    if code == _NDARRAY:
        import numpy

        (dtype, shape), raw = msgpack.unpackb(data)
        return numpy.frombuffer(raw, dtype=numpy.dtype(dtype)).reshape(shape).copy()
    if code == _PYDANTIC:
        path, dumped = msgpack.unpackb(data, strict_map_key=False)
        return _model(path).model_validate(dumped)
    raise ValueError(f"unknown msgpack extension {code}")


def _model(path: str) -> Any:
    """The pydantic model class at ``module:qualname`` (nothing else is imported as a class)."""
    import importlib

    from pydantic import BaseModel

    module, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ValueError(f"{path} is not a pydantic model")
    return found
