"""Opening a stream: the run's stream, with its recording observers attached.

``pipeline.stream`` starts the run (checked, its store recording set up) and hands it here:
``record=PATH`` adds a :class:`~legato.streaming.record.RecordFile` (every source item and
result to a file, for replay); a run recorded in the store (``store=``) gets a
:class:`~legato.streaming.record.StoreSummary`, which keeps the stream's final
:class:`~legato.streaming.StreamStats` with the run's record and closes the recording.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from legato.engine import OnDrop, Run
from legato.streaming.stream import OnStreamError, Stream, StreamObserver

if TYPE_CHECKING:
    from legato.store.session import Recording


def open_stream(
    run: Run,
    source: Any,
    *,
    window: int = 256,
    on_drop: OnDrop = "skip",
    on_error: OnStreamError = "raise",
    indexed: bool = False,
    record: str | os.PathLike[str] | None = None,
    recording: Recording | None = None,
) -> Stream:
    """A :class:`Stream` of ``run`` fed from ``source`` (see :meth:`Pipeline.stream`)."""
    observers: list[StreamObserver] = []
    try:
        if record is not None:
            from legato.streaming.record import RecordFile

            observers.append(RecordFile(record, run))
        if recording is not None:
            from legato.streaming.record import StoreSummary

            observers.append(StoreSummary(recording))
        return Stream(run, source, window=window, on_drop=on_drop, on_error=on_error,
                      indexed=indexed, observers=observers)
    except BaseException:
        run.cancel()
        for observer in observers:
            observer.ended(None, error=None)
        raise
