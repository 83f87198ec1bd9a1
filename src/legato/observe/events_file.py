"""Write node executions as JSON lines: one line per finished or failed call.

Each line: ``{"item": 3, "node": "recognizer", "attempt": 1, "start": 12.5, "end": 12.9,
"duration": 0.4, "status": "ok", "executor": "thread"}`` (times in seconds on the engine's
monotonic clock; ``error`` on failures). Run-level lines carry ``"event": "run"``.
"""

from __future__ import annotations

import json
import threading
from typing import IO

from legato.engine.events import Event, ItemFinished, NodeFailed, NodeFinished, RunFinished


class EventsFile:
    """An event subscriber appending JSON lines to an open text file."""

    def __init__(self, stream: IO[str], *, run: str | None = None) -> None:
        self.stream = stream
        self.run = run
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self.run is not None and getattr(event, "run", None) != self.run:
            return
        record: dict[str, object]
        if isinstance(event, NodeFinished):
            record = {"item": event.item, "node": event.node, "attempt": event.attempt,
                      "start": event.start, "end": event.end,
                      "duration": event.end - event.start, "status": "ok",
                      "executor": event.executor}
        elif isinstance(event, NodeFailed):
            record = {"item": event.item, "node": event.node, "attempt": event.attempt,
                      "start": event.start, "end": event.end,
                      "duration": event.end - event.start,
                      "status": "retrying" if event.will_retry else "failed",
                      "error": event.error}
        elif isinstance(event, ItemFinished):
            record = {"event": "item", "item": event.item, "time": event.time,
                      "status": "cancelled" if event.cancelled else "ok" if event.ok
                      else "failed"}
        elif isinstance(event, RunFinished):
            record = {"event": "run", "status": event.status, "time": event.time,
                      "done": event.done, "failed": event.failed}
        else:
            return
        with self._lock:
            self.stream.write(json.dumps(record) + "\n")
