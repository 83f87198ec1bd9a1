"""The run store: every run recorded in SQL, values in a content-addressed blob store, a cache,
and resuming a run that died.

- :class:`Store` (``store.py``): open a database (SQLite by default, PostgreSQL by URL) and
  read runs, items, node executions and cache entries back.
- :class:`Recorder` (``writer.py``): the event subscriber that writes a run, in batches.
- :class:`StoreMemo` (``memo.py``): cache hits and resumed work, for the engine.
- ``claims.py``: which process holds a run (host, pid, process start), so that one process at
  a time resumes it; ``lineage.py``: what a recorded node output depends on (for
  ``resume --retry-failed``); ``housekeeping.py``: removing runs, freeing unused blobs.
- ``database.py`` (connections, Alembic migrations), ``schema.py`` (the tables),
  ``blobs.py`` (content-addressed bytes, verified, compressed), ``values.py`` (how values
  become bytes).

Importing this package imports SQLAlchemy; ``import legato`` does not.
"""

from legato.store.memo import StoreMemo
from legato.store.records import CacheRecord, ItemRecord, NodeRecord, RunRecord
from legato.store.store import Resumed, Store, home
from legato.store.writer import Recorder

__all__ = [
    "CacheRecord",
    "ItemRecord",
    "NodeRecord",
    "Recorder",
    "Resumed",
    "RunRecord",
    "Store",
    "StoreMemo",
    "home",
]
