"""Streams: a pipeline fed from an endless source (``pipeline.stream``), fixed-rate ticks,
interruption, and record and replay.

- :mod:`legato.streaming.sources`: :class:`Tick` (drift-free, overruns counted, never bunched),
  :class:`Interrupt`, the :class:`TimedSource` protocol;
- :mod:`legato.streaming.stream`: :class:`Stream` (the pump, the reader, :class:`StreamStats`);
- :mod:`legato.streaming.record`: a stream's record file, and :func:`replay` of one.
"""

from __future__ import annotations

from legato.streaming.sources import Interrupt, Schedule, Tick, Ticks, Timed, TimedSource
from legato.streaming.stream import Stream, StreamObserver, StreamStats

__all__ = ["Interrupt", "Schedule", "Stream", "StreamObserver", "StreamStats", "Tick", "Ticks",
           "Timed", "TimedSource"]
