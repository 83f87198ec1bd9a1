"""What the store hands back when asked: plain, frozen records of runs, items, node executions
and cache entries. Times are seconds since the epoch (floats); durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run: what was run, on what, how it went."""

    id: str
    pipeline: str
    fingerprint: str  # the graph's: components' code and versions, and the wiring
    status: str  # "running" | "ok" | "failed" | "cancelled" (a "running" run whose process died
    # stays "running" until it is resumed: ``host``, ``pid`` and ``process`` tell, see
    # :mod:`legato.store.claims`; the CLI shows it as "interrupted")
    started: float
    finished: float | None
    done: int
    failed: int
    error: str | None
    target: str | None  # "file.py:name" for runs started by the CLI (what ``resume`` reloads)
    inputs: dict[str, Any]  # a summary: {"source": "items.jsonl", "count": 42} or similar
    options: dict[str, Any]  # the run's options (window, ordered, on_error, cache, output path)
    host: str
    pid: int
    process: str = ""  # with host and pid, the process holding a "running" run (its start)
    total: int | None = None  # items in the run's input, once the input was read to the end
    recorded: int = 0  # items whose outcome (ok or failed) is recorded: an interrupted run's
    # progress, what a resume will not compute again (failed ones are tried again)
    mode: str | None = None  # "run" | "map" | "stream" | "serve" (None: recorded before 0004)

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One attempt of one node for one item."""

    run: str
    item: int
    node: str  # the node's path in the item: "embed", "each[3]/score", "check/then/fix"
    attempt: int
    status: str  # "ok" | "failed" | "retried" | "cached" (a cache hit; no execution)
    queued: float | None
    start: float
    end: float
    executor: str  # "inline" | "thread" | "async" | "process" | "ray" | "" for a cache hit
    worker: str  # which worker ran it: "thread-2", "process-1234", an actor id
    error: str | None
    traceback: str | None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ItemRecord:
    run: str
    index: int
    status: str  # "ok" | "failed"
    finished: float
    error: str | None


@dataclass(frozen=True, slots=True)
class CacheRecord:
    key: str
    component: str
    created: float
    size: int  # bytes of the stored outputs
    hits: int
