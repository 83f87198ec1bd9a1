"""Streams: a pipeline fed from an endless source (``pipeline.stream``), fixed-rate ticks,
interruption, and record and replay.

- :mod:`legato.streaming.sources`: :class:`Tick` (drift-free, overruns counted, never bunched),
  :class:`Interrupt`, the :class:`TimedSource` protocol;
- :mod:`legato.streaming.stream`: :class:`Stream` (the pump, the reader, :class:`StreamStats`);
- :mod:`legato.streaming.record`: a stream's record file, and :func:`replay` of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.streaming.sources import Interrupt, Schedule, Tick, Ticks, Timed, TimedSource
from legato.streaming.stream import Stream, StreamObserver, StreamStats

if TYPE_CHECKING:
    import os

    from legato.streaming.record import Record, RecordedError, Replay, read_record


def replay(path: str | os.PathLike[str], *, speed: float | None = 1.0) -> Replay:
    """A source that plays back a stream recorded with ``stream(..., record=path)``, with its
    original timing on the engine's clock, ``speed`` times as fast (None: as fast as possible);
    see :func:`legato.streaming.record.replay`."""
    from legato.streaming.record import replay as replay_record

    return replay_record(path, speed=speed)


def __getattr__(name: str) -> Any:
    """The record file's names, imported on first use (``import legato`` stays light)."""
    if name in ("Record", "RecordedError", "Replay", "read_record"):
        from legato.streaming import record

        return getattr(record, name)
    raise AttributeError(f"module 'legato.streaming' has no attribute {name!r}")


__all__ = ["Interrupt", "Record", "RecordedError", "Replay", "Schedule", "Stream",
           "StreamObserver", "StreamStats", "Tick", "Ticks", "Timed", "TimedSource",
           "read_record", "replay"]
