"""A stream's record: every source item with its time stamp, and every result, in a file; and
:func:`replay`, a source that plays a record back with its original timing.

The file is JSON lines (UTF-8), one object a line, written as the stream goes:

- first ``{"legato": "stream-record", "version": 1, "pipeline": NAME, "run": ID}``;
- each source item as it goes in: ``{"in": INDEX, "t": STAMP, "value": VALUE}``, with
  ``"interrupt": true`` when it came as an :class:`~legato.streaming.Interrupt` (a bare
  interrupt, with no item: ``{"interrupt": true, "t": STAMP}``);
- each result as its item ends (in the order items end): ``{"out": INDEX, "value": VALUE}``,
  ``{"out": INDEX, "dropped": {"node": NODE, "reason": REASON}}`` or ``{"out": INDEX,
  "error": MESSAGE, "type": CLASS}``;
- last, ``{"stats": {...}}``: the stream's final :class:`~legato.streaming.StreamStats`.

``STAMP`` is the item's time on the engine's clock (seconds; only differences between stamps
mean anything across processes). A ``VALUE`` is plain JSON when the value is plain JSON data
that reads back exactly (None, booleans, integers, finite floats, strings, lists, objects with
string keys not starting with ``$``); anything else that legato's store can hold without a
pickle (tuples, NumPy arrays, bytes, pydantic models: :mod:`legato.values`' msgpack form) is
``{"$msgpack": "<base64>"}``, read back as the same value; a value with no such form (a
custom class) is ``{"$unrecorded": TYPE}``: its item cannot be replayed. Plain JSON keeps a
record readable with ``jq``; msgpack keeps a NumPy sensor frame exact.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legato.engine import Dropped, ItemHandle, Run
from legato.errors import ConfigError, RecordError, StoreError, Unstorable
from legato.streaming.sources import Interrupt, Timed
from legato.streaming.stream import StreamObserver, StreamStats
from legato.values import Codec, form

if TYPE_CHECKING:
    from legato.store.session import Recording

FORMAT = "stream-record"
VERSION = 1
_MSGPACK_KEY, _UNRECORDED_KEY = "$msgpack", "$unrecorded"
_END = object()


# -- values ----------------------------------------------------------------------------------


def _plain(value: Any) -> bool:
    """True when ``value`` is JSON data that reads back as itself."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and not k.startswith("$") and _plain(v)
                   for k, v in value.items())
    return False


def encode(value: Any) -> Any:
    """A value as JSON data (see the module docstring)."""
    if _plain(value):
        return value
    try:
        kind, payload = form(value)
    except Unstorable:
        kind, payload = b"", b""
    if kind != b"m":
        return {_UNRECORDED_KEY: type(value).__name__}
    return {_MSGPACK_KEY: base64.b64encode(payload).decode("ascii")}


def decode(data: Any, *, where: str = "a value") -> Any:
    """The value :func:`encode` wrote; RecordError for an unrecorded one."""
    if isinstance(data, dict) and len(data) == 1:
        if _MSGPACK_KEY in data:
            try:
                raw = base64.b64decode(data[_MSGPACK_KEY], validate=True)
                return Codec(b"").decode(b"m" + raw, name=where)
            except (ValueError, StoreError) as exc:
                raise RecordError(f"{where} is not a valid recorded value: {exc}") from None
        if _UNRECORDED_KEY in data:
            raise RecordError(f"{where} was not recorded: a {data[_UNRECORDED_KEY]} has no "
                              "stored form without pickling (give the source plain data, "
                              "NumPy arrays or pydantic models)")
    return data


# -- writing ---------------------------------------------------------------------------------


class RecordFile(StreamObserver):
    """Writes a stream's record to ``path`` (see the module docstring). Lines are queued and
    written by a thread of its own: the engine's loop never waits on the disk."""

    def __init__(self, path: str | os.PathLike[str], run: Run) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: io.TextIOWrapper = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise RecordError(f"cannot write the stream record {self.path}: {exc}") from exc
        self._lines: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._put({"legato": FORMAT, "version": VERSION, "pipeline": run.graph.name,
                   "run": run.id})
        self._thread = threading.Thread(target=self._write, name="legato-record", daemon=True)
        self._thread.start()

    def _put(self, line: Any) -> None:
        self._lines.put(line)

    def submitted(self, index: int | None, stamp: float, raw: Any, *,
                  interrupt: bool) -> None:
        if index is None:
            self._put({"interrupt": True, "t": stamp})
            return
        line: dict[str, Any] = {"in": index, "t": stamp, "value": encode(raw)}
        if interrupt:
            line["interrupt"] = True
        self._put(line)

    def finished(self, handle: ItemHandle) -> None:
        self._put(handle)  # encoded on the writer's thread

    def ended(self, stats: StreamStats | None, *, error: BaseException | None) -> None:
        if stats is not None:
            self._put({"stats": stats.to_dict()})
        self._put(_END)
        self._thread.join()
        if self._failure is not None:
            raise RecordError(f"the stream record {self.path} could not be written: "
                              f"{self._failure}") from self._failure

    def _write(self) -> None:
        with self._file:
            while (line := self._lines.get()) is not _END:
                if self._failure is not None:
                    continue
                if isinstance(line, ItemHandle):
                    line = _result_line(line)
                try:
                    self._file.write(json.dumps(line, allow_nan=False) + "\n")
                except (OSError, ValueError) as exc:
                    self._failure = exc


def _result_line(handle: ItemHandle) -> dict[str, Any]:
    error = handle.exception()
    if error is not None:
        return {"out": handle.index, "error": str(error), "type": type(error).__name__}
    result = handle.result()
    if isinstance(result, Dropped):
        return {"out": handle.index, "dropped": {"node": result.node, "reason": result.reason}}
    return {"out": handle.index, "value": encode(result)}


class StoreSummary(StreamObserver):
    """For a stream recorded in the run store: its final stats kept in the run's options
    (``options["stream"]``, what ``legato show`` prints), then the recording closed."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def ended(self, stats: StreamStats | None, *, error: BaseException | None) -> None:
        try:
            if stats is not None:
                self.recording.store.annotate(self.recording.run_id,
                                              {"stream": stats.to_dict()})
        finally:
            self.recording.close(quiet=error is not None or stats is None)


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Record:
    """A record file read back: ``items`` (each source item as :class:`Timed`, an interrupt as
    its :class:`Interrupt` wrapper), ``outputs`` by item index (a value, a
    :class:`~legato.engine.Dropped` marker, or the error message as a :class:`RecordedError`),
    and ``stats`` as written (None when the stream did not end cleanly)."""

    pipeline: str
    run: str
    items: list[Timed] = field(default_factory=list)
    outputs: dict[int, Any] = field(default_factory=dict)
    stats: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordedError:
    """An item that failed when the stream was recorded: its error's class name and message."""

    type: str
    message: str


def _lines(path: Path) -> Generator[tuple[int, dict[str, Any]], None, None]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"cannot read the stream record {path}: {exc}") from exc
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as exc:
                raise RecordError(f"{path}:{number} is not JSON ({exc}); a stream record is "
                                  "one JSON object a line") from None
            if not isinstance(line, dict):
                raise RecordError(f"{path}:{number} is not a JSON object")
            if number == 1 and (line.get("legato") != FORMAT or line.get("version") != VERSION):
                raise RecordError(f"{path} is not a legato stream record (version {VERSION}): "
                                  "its first line should be its header, written by "
                                  "pipeline.stream(..., record=PATH)")
            yield number, line


def _item(path: Path, number: int, line: dict[str, Any]) -> Timed | None:
    """The source item a line holds (None: not an item line)."""
    if "t" not in line or not ("in" in line or line.get("interrupt")):
        return None
    stamp = line["t"]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise RecordError(f"{path}:{number}: its time stamp 't' is not a number: {stamp!r}")
    if "in" not in line:
        return Timed(float(stamp), Interrupt(None))
    value = decode(line.get("value"), where=f"{path}:{number} (item {line['in']})")
    return Timed(float(stamp), Interrupt(value) if line.get("interrupt") else value)


def read_record(path: str | os.PathLike[str]) -> Record:
    """Read a whole record file (see :class:`Record`)."""
    path = Path(path)
    record: Record | None = None
    for number, line in _lines(path):
        if record is None:
            record = Record(pipeline=str(line.get("pipeline")), run=str(line.get("run")))
            continue
        item = _item(path, number, line)
        if item is not None:
            record.items.append(item)
        elif "out" in line:
            index = int(line["out"])
            if "dropped" in line:
                dropped = line["dropped"]
                record.outputs[index] = Dropped(index, dropped["node"], dropped["reason"])
            elif "error" in line:
                record.outputs[index] = RecordedError(str(line.get("type")), line["error"])
            else:
                record.outputs[index] = decode(line.get("value"), where=f"{path}:{number}")
        elif "stats" in line:
            record.stats = line["stats"]
    if record is None:
        raise RecordError(f"{path} is empty: not a stream record")
    return record


# -- replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """A recorded stream as a source (see :func:`replay`)."""

    path: Path
    speed: float | None = 1.0

    def schedule(self) -> ReplaySchedule:
        path = self.path
        items = (item for number, line in _lines(path)
                 if number > 1 and (item := _item(path, number, line)) is not None)
        return ReplaySchedule(items, self.speed)


class ReplaySchedule:
    """A :class:`Replay` on a clock: item ``i`` is due at ``start + (t_i - t_0) / speed``
    (``speed`` None: at once) and stamped ``start + (t_i - t_0)``, ``start`` being the time of
    the first ``next_due`` call. A replay never skips an item: one that is late goes out late."""

    def __init__(self, items: Iterator[Timed], speed: float | None) -> None:
        self._items = items
        self.speed = speed
        self.overruns = 0
        self._started = False
        self._start = self._origin = 0.0
        self._pending: Timed | None = None

    def _peek(self, now: float) -> Timed | None:
        if self._pending is None:
            self._pending = next(self._items, None)
        if not self._started and self._pending is not None:
            self._started = True
            self._start, self._origin = now, self._pending.at
        return self._pending

    def next_due(self, now: float) -> float | None:
        item = self._peek(now)
        if item is None:
            return None
        if self.speed is None:
            return now
        return self._start + (item.at - self._origin) / self.speed

    def take(self, now: float) -> Timed | None:
        item = self._peek(now)
        if item is None:
            return None
        self._pending = None
        return Timed(self._start + (item.at - self._origin), item.inputs)


def replay(path: str | os.PathLike[str], *, speed: float | None = 1.0) -> Replay:
    """A source that plays back a stream recorded with ``stream(..., record=path)``: the same
    items (interrupts included), each at its original time relative to the first on the
    engine's clock, ``speed`` times as fast (None: as fast as they can be submitted), stamped
    with its original offset from the first (so ``max_age`` sees the ages it saw). Under a
    simulated clock, a replay of a pipeline whose components are deterministic reproduces the
    recorded outputs."""
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float)
                              or not speed > 0 or math.isinf(speed)):
        raise ConfigError(f"replay speed must be a finite number > 0 or None (as fast as "
                          f"possible), got {speed!r}")
    target = Path(path)
    if not target.is_file():
        raise RecordError(f"no stream record at {target}: record one with "
                          "pipeline.stream(source, record=PATH)")
    lines = _lines(target)
    if next(lines, None) is None:  # its header checked now, not once the stream runs
        raise RecordError(f"{target} is empty: not a stream record")
    lines.close()
    return Replay(target, None if speed is None else float(speed))
