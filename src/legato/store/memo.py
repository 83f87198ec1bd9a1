"""The store's answers to a run's questions: cache hits, and a resumed run's recorded work.

A :class:`StoreMemo` is the engine's :class:`~legato.engine.memo.Memo` over a store:

- **Resume.** Given what a stopped run recorded (:class:`~legato.store.store.Resumed`), an
  item with a recorded result is not run again, and a node of an unfinished item whose outputs
  were recorded is not called again: both come back from the blob store.
- **Cache.** For a component with ``cache=True`` (every component, with ``cache="all"``), the
  key is the component's fingerprint (code, ``version``, ``weights``, constructor arguments)
  and the digest of each input's stored form (:func:`legato.values.fingerprint`, computed
  by the backend where the input lives: a value held in a Ray cluster is hashed there). A key
  found in the cache table gives the outputs (a hit, published as a ``CacheHit`` event); a miss
  returns the key, the call runs, and the writer stores its outputs under it. Inputs with no
  stored form are not cached.

A recorded value that cannot be read back (its blob lost) is computed again, not fatal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from legato.component import Component, Instance
from legato.engine.memo import Reuse
from legato.errors import StoreError
from legato.store.store import Resumed, Store
from legato.values import fingerprint


class StoreMemo:
    """Cache and resume lookups for one run (see the module docstring)."""

    def __init__(self, store: Store, *, cache_all: bool = False, caching: bool = True,
                 resumed: Resumed | None = None,
                 digest: Callable[[Any], str | None] = fingerprint) -> None:
        """``caching=False``: only resume (the run turned caching off); ``cache_all``: cache
        every component, not only those declared ``cache=True``; ``digest``: an input's
        fingerprint (the backend's, where values live elsewhere)."""
        self.store = store
        self.digest = digest
        self.cache_all = cache_all
        self.caching = caching
        self.resumed = resumed
        self.cache_names: dict[str, str] = {}  # key -> component name, for the writer
        self._forgotten: set[int] = set()  # a resumed run's items whose inputs changed

    def forget(self, index: int) -> None:
        """Reuse nothing recorded for item ``index`` (its inputs are not the recorded ones)."""
        self._forgotten.add(index)

    def item(self, index: int) -> Reuse | None:
        if self.resumed is None or index in self._forgotten:
            return None
        found = self.resumed.items.get(index)
        if found is None:
            return None
        try:
            return Reuse(self.store.value(found), "resume")
        except StoreError:
            return None

    def node(self, item: int, name: str, target: Component | Instance,
             kwargs: dict[str, Any]) -> Reuse | str | None:
        if self.resumed is not None and item not in self._forgotten:
            recorded = self.resumed.nodes.get((item, name))
            if recorded is not None:
                outputs = self._values(recorded)
                if outputs is not None:
                    return Reuse(outputs, "resume")
        component = target.component
        if not (self.caching and (self.cache_all or component.options.cache)):
            return None
        key = self.key(target, kwargs)
        if key is None:
            return None
        cached = self.store.cached(key)
        if cached is not None:
            outputs = self._values(cached)
            if outputs is not None:
                return Reuse(outputs, "cache", key)
        self.cache_names[key] = component.name
        return key

    def key(self, target: Component | Instance, kwargs: dict[str, Any]) -> str | None:
        """The cache key of a call: fingerprint and input digests (None: an input has no
        stored form)."""
        parts = [target.fingerprint()]
        for port in sorted(kwargs):
            found = self.digest(kwargs[port])
            if found is None:
                return None
            parts.append(f"{port}={found}")
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    def _values(self, references: dict[str, str]) -> dict[str, Any] | None:
        try:
            return {port: self.store.value(found) for port, found in references.items()}
        except StoreError:
            return None
