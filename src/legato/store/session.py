"""Recording one run: the store, the writer and the memo a run needs, set up and closed.

:func:`record` is what ``Pipeline.map`` calls. It decides whether a run needs a store at all
(one was passed, or the run resumes, or something is cached), records the run's start (or marks
a resumed run running again), attaches the writer to the engine's bus, and gives the engine its
memo. :meth:`Recording.close` flushes the writer and closes a store it opened.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from legato.engine.events import EventBus
from legato.errors import ConfigError
from legato.graph import Graph
from legato.store.memo import StoreMemo
from legato.store.records import RunRecord
from legato.store.store import Store
from legato.store.writer import Recorder
from legato.values import fingerprint

StoreArg = Store | str | Path | bool | None
CacheArg = bool | Literal["all"]


@dataclass
class Recording:
    """One run being recorded."""

    run_id: str
    store: Store
    recorder: Recorder
    memo: StoreMemo | None
    owned: bool  # the store was opened here, and is closed here

    def close(self, *, quiet: bool = False) -> None:
        """Write what is left; raise the recording's StoreError unless ``quiet`` (the run is
        already failing with an error of its own)."""
        try:
            self.recorder.close()
        except Exception:
            if not quiet:
                raise
        finally:
            if self.owned:
                self.store.close()


def record(
    graph: Graph,
    bus: EventBus,
    *,
    store: StoreArg,
    cache: CacheArg = True,
    resume: str | None = None,
    run_id: str | None = None,
    info: Mapping[str, Any] | None = None,
    digest: Callable[[Any], str | None] = fingerprint,
) -> Recording | None:
    """Start recording a run of ``graph`` (None when the run needs no store); see the module
    docstring. ``store``: a Store, a URL or path, True for the default store, None for the
    default store only if the run resumes or caches, False for none. ``digest``: the
    backend's fingerprint of a value (for cache keys)."""
    if cache not in (True, False, "all"):
        raise ConfigError(f"cache must be True, False or 'all', got {cache!r}")
    caching = cache == "all" or (cache is True and graph.caching())
    if store is False:
        if resume is not None or cache == "all":
            raise ConfigError("resume= and cache='all' need a store; drop store=False")
        return None
    if store is None and resume is None and not caching:
        return None
    owned = not isinstance(store, Store)
    opened = store if isinstance(store, Store) else Store.open(
        None if store is None or store is True else store)
    try:
        fingerprint = graph.fingerprint()
        resumed = None
        if resume is not None:
            resumed = opened.resume(resume, fingerprint=fingerprint, pid=os.getpid())
            run_id = resumed.run.id
        else:
            run_id = run_id or uuid.uuid4().hex[:12]
            details = dict(info or {})
            opened.start_run(RunRecord(
                id=run_id, pipeline=graph.name, fingerprint=fingerprint, status="running",
                started=time.time(), finished=None, done=0, failed=0, error=None,
                target=details.get("target"), inputs=dict(details.get("inputs") or {}),
                options=dict(details.get("options") or {}), host=socket.gethostname(),
                pid=os.getpid()))
        memo = None
        if resumed is not None or caching:
            memo = StoreMemo(opened, cache_all=cache == "all", caching=cache is not False,
                             resumed=resumed, digest=digest)
        recorder = Recorder(opened, run_id,
                            cache_names=memo.cache_names if memo is not None else None)
        recorder.attach(bus)
    except BaseException:
        if owned:
            opened.close()
        raise
    return Recording(run_id, opened, recorder, memo, owned)
