"""The store's tables, at the newest schema revision (``HEAD``), as SQLAlchemy Core.

The migrations in ``migrations/versions`` build these tables step by step; a test compares a
migrated database with this module, so the two cannot drift. Times are seconds since the epoch.
``outputs`` (JSON ``{port: reference}``) and ``result`` hold value references: a blob digest,
or, for a value whose stored form is small, ``"="`` and that form in base64 (see
:meth:`legato.store.Store.reference`): a million tiny results are not a million files.

An item's row is written when the item is read from the run's input (status ``"pending"``,
``finished`` then the time it was read, ``inputs`` the digest of its inputs), and again when it
ends (``"ok"`` or ``"failed"``): a resumed run checks its inputs against every row. A run's
``host``, ``pid`` and ``process`` name the process that holds it while its status is
``"running"`` (see :mod:`legato.store.claims`).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

HEAD = "0004"  # the newest revision in migrations/versions
REVISIONS = ("0001", "0002", "0003", "0004")  # every revision this legato knows, oldest first

metadata = MetaData()

meta = Table(
    "legato_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started", Float, nullable=False),
    Column("finished", Float),
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("target", Text),
    Column("inputs", Text, nullable=False, default="{}"),
    Column("options", Text, nullable=False, default="{}"),
    Column("host", String(255), nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    # who holds the run (with host and pid): the process's start, so a reused pid is told apart
    Column("process", String(80), nullable=False, default="", server_default=""),
    Column("total", Integer),  # items in the run's input, once it was read to the end
    Column("shape", String(64)),  # the graph's node ids and wiring, without the code
    Column("lineage", Text),  # JSON {node path: digest of its code and of its upstream's}
    Column("mode", String(16)),  # "run" | "map" | "stream" | "serve" (None: before 0004)
    Index("ix_runs_started", "started"),
    Index("ix_runs_pipeline_started", "pipeline", "started"),
    Index("ix_runs_status_started", "status", "started"),
)

items = Table(
    "items", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("finished", Float, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("inputs", String(32)),  # the digest of the item's inputs (None: they have no form)
    Column("inputs_ref", Text),  # a failed item's inputs (a value reference), to show with it
)

nodes = Table(
    "nodes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("item", Integer, nullable=False),
    Column("node", String(512), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued", Float),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("executor", String(32), nullable=False, default=""),
    Column("worker", String(128), nullable=False, default=""),
    Column("error", Text),
    Column("traceback", Text),
    Column("outputs", Text),
    Column("batch", Integer),  # the size of the batch the call was part of (None: not batched)
    Index("ix_nodes_run_item", "run_id", "item"),
)

graphs = Table(  # the pipeline JSON (legato.draw.to_dict) of each graph run, for the web UI:
    "graphs", metadata,  # once per graph fingerprint (a run's ``fingerprint``), not per run
    Column("fingerprint", String(64), primary_key=True),
    Column("graph", Text, nullable=False),
    Column("created", Float, nullable=False),
)

cache = Table(
    "cache", metadata,
    Column("key", String(64), primary_key=True),
    Column("component", String(255), nullable=False),
    Column("outputs", Text, nullable=False),
    Column("size", Integer, nullable=False, default=0),
    Column("created", Float, nullable=False),
    Column("hits", Integer, nullable=False, default=0),
    Index("ix_cache_component", "component"),
)
