"""The store writer: records one run from its events, in batches, on its own thread.

The :class:`Recorder` subscribes to the engine's event bus. On the run's thread it only
appends the event to a queue (nothing on the hot path waits on the database); its thread wakes
every ``interval`` seconds, or sooner when a batch is full, turns the queued events into rows,
writes the values to the blob store first and then the rows in one transaction. A crash loses at
most the last interval's records, never half of one: a row never names a blob that is not there.

Besides events, the run's feed tells the recorder of each item read from the input (:meth:`read`:
a "pending" row with the digest of its inputs, so a resume can check the inputs of items that
had not finished), of the input's end (:meth:`read_all`: the run's item count), and of a
resume that drops items past the input's new end (:meth:`truncate`). :meth:`restore` keeps the
run's row as it was before (a finished run handed back, or a resume refused).

If recording fails (a full disk, a database locked past the wait), the recorder stops
recording, the run goes on and every finished item's result still reaches the caller;
:meth:`Recorder.close` then raises the :class:`StoreError`. The queue is bounded: a run that
outpaces the database for long waits for it rather than fill the memory.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from legato.engine.events import (
    EVENT_KINDS,
    AdmissionWaited,
    BatchFormed,
    CacheHit,
    Event,
    EventBus,
    InstanceBuilt,
    InstanceEvicted,
    ItemDropped,
    ItemFinished,
    ItemStarted,
    NodeFailed,
    NodeFinished,
    NodeQueued,
    NodeStarted,
    RunFinished,
    RunStarted,
)
from legato.errors import StoreError
from legato.store import schema
from legato.store.database import upsert, writing
from legato.store.records import RunRecord
from legato.store.store import Store
from legato.values import Unstorable

_HIGH_WATER = 200_000  # queued events past which the run waits for the writer
# a node's row is written when it ends, with its queued and start times: these add nothing
_UNRECORDED = frozenset({NodeQueued, NodeStarted, BatchFormed, InstanceBuilt, InstanceEvicted,
                         ItemDropped, AdmissionWaited})  # ItemDropped: its ItemFinished follows


class _Read:
    """Item ``index`` was read from the input; ``digest``: of its inputs."""

    __slots__ = ("digest", "index", "wall")

    def __init__(self, index: int, digest: str | None) -> None:
        self.index = index
        self.digest = digest
        self.wall = time.time()


class _End:
    """The input ended after ``count`` items; ``truncate``: rows past it are to go."""

    __slots__ = ("count", "truncate")

    def __init__(self, count: int, *, truncate: bool = False) -> None:
        self.count = count
        self.truncate = truncate


class Recorder:
    """Records the run ``run_id`` into ``store`` (see the module docstring)."""

    def __init__(self, store: Store, run_id: str, *, cache_names: dict[str, str] | None = None,
                 interval: float = 0.1, batch: int = 5_000, sample: int | None = None,
                 graph: tuple[str, Callable[[], str | None]] | None = None) -> None:
        self.store = store
        self.graph = graph  # (fingerprint, describe): the pipeline JSON, kept once per graph
        self.run_id = run_id
        self.sample = sample  # record the rows of the first ``sample`` items, and failures
        self.interval = interval
        self.batch = batch
        self.error: StoreError | None = None
        self._cache_names = cache_names if cache_names is not None else {}
        self._events: collections.deque[Event | _Read | _End] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._offset = time.time() - time.monotonic()  # engine clock -> wall clock
        self._thread = threading.Thread(target=self._work, name="legato-store", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None
        self._digests: dict[int, str | None] = {}  # items read and not yet finished
        self._inputs: dict[int, Any] = {}  # items started and not yet finished: their inputs
        self._restore: dict[str, Any] | None = None

    def read(self, index: int, digest: str | None) -> None:
        """Item ``index`` was read from the run's input (``digest``: of its inputs)."""
        if self.error is None:
            self._events.append(_Read(index, digest))

    def read_all(self, count: int) -> None:
        """The run's input ended after ``count`` items."""
        if self.error is None:
            self._events.append(_End(count))

    def truncate(self, count: int) -> None:
        """The run now has ``count`` items: forget the rows of items past them."""
        if self.error is None:
            self._events.append(_End(count, truncate=True))

    def restore(self, run: RunRecord) -> None:
        """When the run ends, put back the run's row as ``run`` has it (a "running" run, no
        longer held by anyone, becomes "cancelled") instead of recording how this run ended."""
        self._restore = {"status": "cancelled" if run.status == "running" else run.status,
                         "finished": run.finished, "done": run.done, "failed": run.failed,
                         "error": run.error}

    def attach(self, bus: EventBus) -> Recorder:
        """Start recording the events of this recorder's run published on ``bus``."""
        self._thread.start()
        self._unsubscribe = bus.subscribe(
            self, kinds=[kind for kind in EVENT_KINDS if kind not in _UNRECORDED])
        return self

    def __call__(self, event: Event) -> None:
        if (event.__class__ in _UNRECORDED or event.run != self.run_id  # type: ignore[union-attr]
                or self.error is not None):
            return
        if event.__class__ is ItemStarted:  # its inputs kept (not copied) until it ends: a
            self._inputs[event.item] = event.inputs  # failed item's are recorded with it
            return
        sample = self.sample
        if sample is not None and getattr(event, "item", -1) >= sample and not (
                event.__class__ is NodeFailed
                or (event.__class__ is ItemFinished and not event.ok)):
            if event.__class__ is ItemFinished:
                self._inputs.pop(event.item, None)
            return  # a long stream: aggregates and a bounded sample, not a row per tick
        events = self._events
        events.append(event)
        if len(events) >= self.batch:
            self._wake.set()
            if len(events) >= _HIGH_WATER:
                while len(events) >= self.batch and self._thread.is_alive():
                    time.sleep(0.001)

    def close(self) -> None:
        """Stop listening, write what is queued, stop the thread; raise the StoreError that
        stopped recording, if one did."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.error is not None:
            raise self.error

    # -- the writer's thread -------------------------------------------------------------------

    def _work(self) -> None:
        if self.graph is not None:  # here, not on the run's thread: describing takes a while
            try:
                self.store.keep_graph(*self.graph)
            except Exception:  # a description is a nicety: the run's record goes on without
                import logging

                logging.getLogger("legato.store").warning(
                    "run %s: its pipeline's description was not stored", self.run_id,
                    exc_info=True)
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            try:
                while self._events and self.error is None:
                    self._flush()
            except StoreError as exc:
                self.error = exc
            except Exception as exc:  # a driver or OS error not translated below
                self.error = StoreError(f"recording run {self.run_id} failed: "
                                        f"{type(exc).__name__}: {exc}")
                self.error.__cause__ = exc
            if self.error is not None:
                self._events.clear()
            if closing:
                return

    def _flush(self) -> None:
        """Write one batch of queued events: blobs first, then rows in one transaction."""
        events = self._events
        rows = _Rows()
        for _ in range(min(len(events), self.batch)):
            event = events.popleft()
            kind = event.__class__
            if kind is NodeFinished:
                self._finished(event, rows)  # type: ignore[arg-type]
            elif kind is NodeFailed:
                self._failed(event, rows)  # type: ignore[arg-type]
            elif kind is ItemFinished:
                self._item(event, rows)  # type: ignore[arg-type]
            elif kind is CacheHit:
                self._hit(event, rows)  # type: ignore[arg-type]
            elif kind is RunStarted:
                self._offset = event.wall - event.time  # type: ignore[union-attr]
            elif isinstance(event, _Read):
                self._read(event, rows)
            elif isinstance(event, _End):
                rows.total = event.count
                if event.truncate:
                    rows.truncate = event.count
            elif kind is RunFinished:
                rows.run = self._restore or {
                    "status": event.status,  # type: ignore[union-attr]
                    "finished": self._wall(event.time),  # type: ignore[union-attr]
                    "done": event.done, "failed": event.failed}  # type: ignore[union-attr]
        with writing(self.store.engine) as connection:
            rows.write(connection, self.run_id)

    def _wall(self, moment: float) -> float:
        return moment + self._offset

    def _outputs(self, outputs: Mapping[str, Any] | None) -> tuple[str | None, int]:
        """The outputs' references as JSON (None if one has no stored form), and their bytes."""
        if outputs is None:
            return None, 0
        parts = []
        size = 0
        for port, value in outputs.items():
            encoded = self._encode(value)
            if encoded is None:
                return None, 0
            # port names are identifiers and references base64 or hex: no JSON escaping needed
            parts.append(f'"{port}": "{self.store.reference(encoded)}"')
            size += len(encoded)
        return "{" + ", ".join(parts) + "}", size

    def _encode(self, value: Any) -> bytes | None:
        try:
            return self.store.codec.encode(value)
        except Unstorable:
            return None

    def _finished(self, event: NodeFinished, rows: _Rows) -> None:
        outputs, size = self._outputs(event.outputs)
        rows.nodes.append(self._node(event, "ok", outputs=outputs))
        if event.cache_key is not None and outputs is not None:
            component = self._cache_names.pop(event.cache_key, event.node)
            rows.cache.append({"key": event.cache_key, "component": component,
                               "outputs": outputs, "size": size,
                               "created": self._wall(event.end), "hits": 0})

    def _failed(self, event: NodeFailed, rows: _Rows) -> None:
        trace = None
        if event.exception is not None:
            trace = "".join(traceback.format_exception(event.exception)).rstrip()
        rows.nodes.append(self._node(event, "retried" if event.will_retry else "failed",
                                     error=event.error, traceback=trace))

    def _node(self, event: NodeFinished | NodeFailed, status: str, *, outputs: str | None = None,
              error: str | None = None, traceback: str | None = None) -> tuple[Any, ...]:
        offset = self._offset
        return (self.run_id, event.item, event.node, event.attempt, status,
                None if event.queued is None else event.queued + offset, event.start + offset,
                event.end + offset, event.executor, event.worker, error, traceback, outputs,
                event.batch_size if event.batch else None)

    def _hit(self, event: CacheHit, rows: _Rows) -> None:
        if event.source != "cache":
            return  # a resumed node: its execution is recorded already
        moment = self._wall(event.time)
        rows.nodes.append((self.run_id, event.item, event.node, 1, "cached", None, moment, moment,
                           "", "", None, None, None, None))
        rows.hits[event.key] += 1

    def _read(self, event: _Read, rows: _Rows) -> None:
        self._digests[event.index] = event.digest
        rows.items[event.index] = {"run_id": self.run_id, "idx": event.index,
                                   "status": "pending", "finished": event.wall, "result": None,
                                   "error": None, "inputs": event.digest, "inputs_ref": None}

    def _item(self, event: ItemFinished, rows: _Rows) -> None:
        digest = self._digests.pop(event.item, None)
        inputs = self._inputs.pop(event.item, None)
        if event.reused or event.cancelled:  # a cancelled item stays pending: resumed, computed
            return
        result = failed_with = None
        if event.ok:
            result = self._reference(event.result)
        elif inputs is not None:
            try:
                failed_with = self._reference(dict(inputs))
            except Exception:  # inputs that cannot be read (a malformed line): none shown
                failed_with = None
        rows.items[event.item] = {"run_id": self.run_id, "idx": event.item,
                                  "status": "ok" if event.ok else "failed",
                                  "finished": self._wall(event.time), "result": result,
                                  "error": event.error, "inputs": digest,
                                  "inputs_ref": failed_with}

    def _reference(self, value: Any) -> str | None:
        """``value``'s reference in the store (None when it has no stored form)."""
        encoded = self._encode(value)
        return None if encoded is None else self.store.reference(encoded)


class _Rows:
    """One batch's rows, written in one transaction."""

    def __init__(self) -> None:
        self.nodes: list[tuple[Any, ...]] = []  # in the order of NODE_COLUMNS
        self.items: dict[int, dict[str, Any]] = {}
        self.cache: list[dict[str, Any]] = []
        self.hits: collections.Counter[str] = collections.Counter()
        self.run: dict[str, Any] | None = None
        self.total: int | None = None
        self.truncate: int | None = None

    def write(self, connection: Connection, run_id: str) -> None:
        if self.truncate is not None:  # before this batch's rows: they are all before the end
            items, nodes = schema.items, schema.nodes
            connection.execute(items.delete().where(items.c.run_id == run_id,
                                                    items.c.idx >= self.truncate))
            connection.execute(nodes.delete().where(nodes.c.run_id == run_id,
                                                    nodes.c.item >= self.truncate))
        if self.nodes:
            _insert_many(connection, schema.nodes, NODE_COLUMNS, self.nodes)
        if self.items:
            upsert(connection, schema.items, list(self.items.values()), ["run_id", "idx"])
        if self.cache:
            upsert(connection, schema.cache, self.cache, ["key"], update=False)
        if self.hits:
            table = schema.cache
            connection.execute(
                table.update().where(table.c.key == sa.bindparam("k"))
                .values(hits=table.c.hits + sa.bindparam("n")),
                [{"k": key, "n": count} for key, count in self.hits.items()])
        runs = schema.runs
        if self.total is not None:
            connection.execute(runs.update().where(runs.c.id == run_id).values(total=self.total))
        if self.run is not None:
            connection.execute(runs.update().where(runs.c.id == run_id).values(**self.run))


NODE_COLUMNS = ("run_id", "item", "node", "attempt", "status", "queued", "start", "end",
                "executor", "worker", "error", "traceback", "outputs", "batch")
_COMPILED: dict[tuple[str, str], tuple[str, bool]] = {}


def _insert_many(connection: Connection, table: sa.Table, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]]) -> None:
    """Insert rows given as tuples straight through the driver's ``executemany``: the
    statement is compiled once per dialect, and no per-row dict is built (the writer's hot
    path: one row per node execution)."""
    key = (connection.dialect.name, table.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = table.insert().compile(dialect=connection.dialect, column_keys=list(columns))
        assert compiled.positiontup is None or tuple(compiled.positiontup) == columns
        found = _COMPILED[key] = (str(compiled), compiled.positional)
    statement, positional = found
    params: Any = rows if positional else [dict(zip(columns, row, strict=True)) for row in rows]
    connection.exec_driver_sql(statement, params)
