"""Live runs: the UI's subscriber on the engines of this process, and its fan-out to browsers.

The :class:`Hub` listens on the event bus of each engine it is attached to (the process's
default engine, an engine handed to the app, a service's engine). On the engine's thread it
does O(1) work per event under one short lock: it counts each node path's executions
(:class:`~legato.ui.stats.NodeTally`), the calls in flight, the items done and failed, and
keeps bounded windows of recent times for the service and stream dashboards. Nothing there
blocks, allocates per client, or formats JSON.

Browsers get server-sent events. Each client is a :class:`Watch` (an ``asyncio.Queue`` used as
a doorbell, on the server's loop): when a run changes, the hub rings each of its watches once
(``loop.call_soon_threadsafe``), only if that watch is not already rung, so a run of 100,000
events a second rings a client at most once per send. The client's task then sends one
``nodes`` event with the whole run's node stats and waits :data:`INTERVAL` before it reads the
next ring: at most ~10 messages a second per client, however fast the run goes. When the run
ends it sends a ``run`` event and closes the stream.

"Live" means the run is open in an engine of this process now. A finished run's numbers stay
here (the last :data:`KEEP_FINISHED` ones), so a page that asks just after the end still gets
the exact final counts; a run the hub never saw start (it began before the hub was attached)
is counted from the first event seen, and the run page then takes its counts from the store.

Event times are the engine clock's (monotonic); each run maps them to the epoch with its
``RunStarted.wall`` (else with the offset between ``time.time()`` and ``time.monotonic()``).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from legato.engine import Engine
from legato.engine.events import (
    CacheHit,
    Event,
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
from legato.store.lineage import path_of
from legato.ui.stats import NodeTally, quantiles

INTERVAL = 0.1  # seconds between two messages to one client (at most ~10 a second)
KEEP_FINISHED = 64  # finished runs whose final numbers are kept
WINDOW = 10.0  # seconds: the sliding window of the live service numbers
SERIES = 60  # seconds of per-second series kept for the dashboards
_RECENT = 50_000  # finished items (service) or item starts (stream) remembered per run


@dataclass(eq=False)
class Watch:
    """One browser following one run: rung (at most once until it reads) when the run
    changes. ``closed``: the hub stopped; the client's stream ends."""

    run: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    rung: bool = False
    closed: bool = False

    def ring(self) -> None:
        """From any thread: wake the client (once until it reads)."""
        if not self.rung:
            self.rung = True
            try:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
            except RuntimeError:  # the server's loop is closed: the client is gone
                self.closed = True

    def clear(self) -> None:
        """Forget the rings so far (the client is about to read the run)."""
        self.rung = False
        while not self.queue.empty():
            self.queue.get_nowait()

    async def wait(self, timeout: float) -> bool:
        """Wait for a ring (True) or ``timeout`` seconds (False); clears the ring."""
        try:
            await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False
        self.rung = False
        return True


class LiveRun:
    """What the hub knows of one run (mutated on the engine's thread, under the hub's lock)."""

    def __init__(self, run: str, engine: Engine | None, *, pipeline: str = "",
                 offset: float | None = None, seen_start: bool = False) -> None:
        self.id = run
        self.engine = engine
        self.pipeline = pipeline
        self.mode: str | None = None
        self.seen_start = seen_start
        self.offset = time.time() - time.monotonic() if offset is None else offset
        self.started: float | None = None  # engine clock
        self.status = "running"
        self.finished: float | None = None  # engine clock
        self.done = 0
        self.failed = 0
        self.nodes: dict[str, NodeTally] = {}
        self.inflight: dict[str, set[tuple[int, str, int]]] = {}
        self.components: set[str] = set()
        self.item_start: dict[int, float] = {}
        self.finishes: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=_RECENT)  # (finished at, latency) of recent items
        self.starts: collections.deque[float] = collections.deque(maxlen=_RECENT)
        self.drops: collections.Counter[str] = collections.Counter()
        self.misses: collections.Counter[str] = collections.Counter()
        self.depths: collections.deque[tuple[float, int]] = collections.deque(maxlen=SERIES * 4)
        self.watches: list[Watch] = []
        self.paths: dict[str, str] = {}

    def tally(self, node: str) -> NodeTally:
        path = self.paths.get(node)
        if path is None:
            path = self.paths[node] = path_of(node)
        found = self.nodes.get(path)
        if found is None:
            found = self.nodes[path] = NodeTally()
        return found

    def now(self) -> float:
        """The engine clock's time now."""
        if self.engine is not None:
            return self.engine.clock.now()
        return time.monotonic()

    def wall(self, moment: float) -> float:
        return moment + self.offset


class Hub:
    """The UI's subscriber on this process's engines (see the module docstring)."""

    def __init__(self, *, window: float = WINDOW) -> None:
        self.window = window
        self.closed = False
        self._lock = threading.Lock()
        self._runs: dict[str, LiveRun] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._detach: list[Callable[[], None]] = []
        self._engines: list[Engine] = []

    # -- attaching -----------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        """Follow the runs of ``engine`` (once per engine; idempotent)."""
        if any(known is engine for known in self._engines):
            return
        self._engines.append(engine)

        def on_event(event: Event) -> None:
            self._on(event, engine)

        self._detach.append(engine.bus.subscribe(on_event, kinds=[RunStarted, *_HANDLERS]))

    def close(self) -> None:
        """Stop listening; every client's stream ends."""
        self.closed = True
        for detach in self._detach:
            detach()
        self._detach.clear()
        with self._lock:
            watches = [w for run in self._runs.values() for w in run.watches]
        for watch in watches:
            watch.closed = True
            watch.ring()

    # -- the engine's thread -------------------------------------------------------------------

    def _on(self, event: Event, engine: Engine) -> None:
        kind = event.__class__
        if kind is RunStarted:
            self._started(event, engine)  # type: ignore[arg-type]
            return
        handler = _HANDLERS[kind]  # the bus calls only with the kinds subscribed to
        run_id = event.run  # type: ignore[union-attr]
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                if kind is RunFinished:
                    return
                run = self._runs[run_id] = LiveRun(run_id, engine)
            handler(run, event)
            if kind is RunFinished:
                self._retire(run_id)
            watches = run.watches
        for watch in watches:
            watch.ring()

    def _started(self, event: RunStarted, engine: Engine) -> None:
        with self._lock:
            run = self._runs.get(event.run)
            if run is None:
                run = self._runs[event.run] = LiveRun(event.run, engine)
            run.pipeline = event.pipeline
            run.offset = event.wall - event.time
            run.started = event.time
            run.seen_start = True
            run.mode = getattr(event, "mode", None)
            watches = list(run.watches)
        for watch in watches:
            watch.ring()

    def _retire(self, run_id: str) -> None:
        """Keep a finished run's numbers, forgetting the oldest past KEEP_FINISHED."""
        self._finished.append(run_id)
        while len(self._finished) > KEEP_FINISHED:
            old = self._runs.get(self._finished.popleft())
            if old is not None and old.status != "running" and not old.watches:
                del self._runs[old.id]

    # -- reading (any thread) ------------------------------------------------------------------

    def is_live(self, run_id: str) -> bool:
        """Whether ``run_id`` is open in an engine of this process now."""
        run = self._runs.get(run_id)
        return run is not None and run.status == "running"

    def live(self) -> set[str]:
        """The ids of the runs open now."""
        with self._lock:
            return {run.id for run in self._runs.values() if run.status == "running"}

    def knows(self, run_id: str) -> bool:
        """Whether the hub saw this run start (then its counts are complete)."""
        run = self._runs.get(run_id)
        return run is not None and run.seen_start

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The API's ``Run`` object for a run the hub knows (None otherwise)."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        with self._lock:
            started = run.wall(run.started) if run.started is not None else None
            finished = run.wall(run.finished) if run.finished is not None else None
            now = run.now()
            duration = (run.finished if run.finished is not None else now) - (
                run.started if run.started is not None else now)
            return {"id": run.id, "pipeline": run.pipeline, "status": run.status,
                    "mode": run.mode, "started": started, "finished": finished,
                    "duration": round(duration, 6), "done": run.done, "failed": run.failed,
                    "recorded": run.done + run.failed, "total": None,
                    "live": run.status == "running"}

    def nodes(self, run_id: str) -> dict[str, dict[str, Any]] | None:
        """Each node path's stats (the API's ``NodeStats``), or None for a run not known."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        with self._lock:
            tallies = [(path, _copy(tally)) for path, tally in run.nodes.items()]
        return {path: tally.to_json() for path, tally in sorted(tallies)}

    def running(self, run_id: str) -> dict[str, int]:
        """Calls in flight now, by node path."""
        run = self._runs.get(run_id)
        if run is None:
            return {}
        with self._lock:
            return {path: len(calls) for path, calls in run.inflight.items() if calls}

    def watch(self, run_id: str, loop: asyncio.AbstractEventLoop) -> Watch | None:
        """A new client following ``run_id`` (None when it is not live)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.status != "running" or self.closed:
                return None
            watch = Watch(run_id, loop)
            run.watches.append(watch)
            return watch

    def unwatch(self, watch: Watch) -> None:
        with self._lock:
            run = self._runs.get(watch.run)
            if run is not None and watch in run.watches:
                run.watches.remove(watch)

    def status(self, run_id: str) -> dict[str, Any] | None:
        """``{"status", "done", "failed"}`` of a run the hub knows."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        return {"status": run.status, "done": run.done, "failed": run.failed}

    # -- dashboards ----------------------------------------------------------------------------

    def service(self, run_id: str, *, responses: Mapping[str, int] | None = None,
                depth: int | None = None) -> dict[str, Any] | None:
        """The live ``/service`` numbers of a run (None when the hub does not know it).
        ``depth``: calls waiting now in the engine (see :func:`queue_depth`)."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        with self._lock:
            now = run.now()
            finishes = list(run.finishes)
            sizes = collections.Counter[int]()
            for tally in run.nodes.values():
                sizes.update(tally.sizes)
            if depth is not None:
                run.depths.append((now, depth))
            depths = list(run.depths)
            begun = run.started
        window = self.window if begun is None else max(1e-9, min(self.window, now - begun))
        recent = [latency for moment, latency in finishes if moment > now - self.window]
        p50, p99 = quantiles(recent, 0.5, 0.99)
        latencies = _by_second(finishes, now)
        last_depth = _by_second(depths, now)
        series = []
        for second in range(SERIES):
            high = now - SERIES + second + 1
            if begun is not None and high < begun:
                continue
            bucket = latencies.get(second, [])
            b50, b99 = quantiles(bucket, 0.5, 0.99)
            seen = last_depth.get(second)
            series.append({"t": round(run.wall(high), 3), "rate": float(len(bucket)),
                           "p50": b50, "p99": b99, "queue_depth": seen[-1] if seen else None})
        calls = {size: max(1, round(members / size)) for size, members in sizes.items()}
        return {"live": run.status == "running", "window": round(window, 6),
                "rate": round(len(recent) / window, 3), "queue_depth": depth,
                "latency": {"p50": p50, "p99": p99},
                "batch_sizes": {str(size): calls[size] for size in sorted(calls)},
                "responses": dict(responses or {}), "series": series}

    def stream(self, run_id: str) -> dict[str, Any] | None:
        """The live ``/stream`` numbers of a run (None when the hub does not know it)."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        with self._lock:
            now = run.now()
            starts = list(run.starts) or sorted(run.item_start.values())
            stages = {path: list(tally.durations)[-1000:] for path, tally in run.nodes.items()}
            drops, misses = dict(run.drops), dict(run.misses)
        recent = [moment for moment in starts if moment > now - self.window]
        intervals = [b - a for a, b in itertools.pairwise(recent)]
        nominal = quantiles(intervals, 0.5)[0] or 0.0
        j50, j99 = quantiles((abs(i - nominal) for i in intervals), 0.5, 0.99)
        rate = 0.0
        if len(recent) > 1:
            rate = round((len(recent) - 1) / max(recent[-1] - recent[0], 1e-9), 3)
        gaps = _by_second(((b, b - a) for a, b in itertools.pairwise(starts)), now)
        series = []
        for second in range(SERIES):
            high = now - SERIES + second + 1
            if not starts or starts[0] > high:
                continue
            bucket = gaps.get(second, [])
            series.append({"t": round(run.wall(high), 3), "rate": float(len(bucket)),
                           "jitter": quantiles((abs(g - nominal) for g in bucket), 0.99)[0]})
        found = {}
        for path in sorted(set(stages) | set(drops) | set(misses)):
            p50, p99 = quantiles(stages.get(path, ()), 0.5, 0.99)
            found[path] = {"p50": p50, "p99": p99, "drops": drops.get(path, 0),
                           "misses": misses.get(path, 0)}
        return {"live": run.status == "running", "rate": rate,
                "jitter": {"p50": j50, "p99": j99}, "stages": found, "series": series,
                "stats": None}

    def components(self, run_id: str) -> set[str]:
        run = self._runs.get(run_id)
        if run is None:
            return set()
        with self._lock:
            return set(run.components)

    def engine_of(self, run_id: str) -> Engine | None:
        run = self._runs.get(run_id)
        return None if run is None else run.engine

    @property
    def engines(self) -> tuple[Engine, ...]:
        return tuple(self._engines)



# -- what each event changes (the engine's thread, under the hub's lock) -----------------------

def _component(run: LiveRun, event: NodeQueued | NodeStarted) -> None:
    name = getattr(event, "component", "")
    if name:
        run.components.add(name)


def _queued(run: LiveRun, event: NodeQueued) -> None:
    run.item_start.setdefault(event.item, event.time)
    _component(run, event)


def _item_started(run: LiveRun, event: ItemStarted) -> None:
    run.item_start[event.item] = event.time
    run.starts.append(event.time)


def _node_started(run: LiveRun, event: NodeStarted) -> None:
    tally = run.tally(event.node)
    calls = run.inflight.setdefault(run.paths[event.node], set())
    calls.add((event.item, event.node, event.attempt))
    tally.running = len(calls)
    _component(run, event)


def _ended(run: LiveRun, event: NodeFinished | NodeFailed, status: str) -> None:
    tally = run.tally(event.node)
    calls = run.inflight.get(run.paths[event.node])
    if calls:
        calls.discard((event.item, event.node, event.attempt))
        tally.running = len(calls)
    size = getattr(event, "batch_size", 1) if getattr(event, "batch", 0) else None
    tally.add(status, event.end - event.start, size)


def _node_finished(run: LiveRun, event: NodeFinished) -> None:
    _ended(run, event, "ok")


def _node_failed(run: LiveRun, event: NodeFailed) -> None:
    _ended(run, event, "retried" if event.will_retry else "failed")
    if event.error.startswith("DeadlineExceeded"):
        run.misses[run.paths[event.node]] += 1


def _cache_hit(run: LiveRun, event: CacheHit) -> None:
    run.tally(event.node).add("cached", 0.0)


def _item_finished(run: LiveRun, event: ItemFinished) -> None:
    if event.ok:
        run.done += 1
    else:
        run.failed += 1
    begun = run.item_start.pop(event.item, None)
    if begun is not None:
        run.finishes.append((event.time, event.time - begun))


def _item_dropped(run: LiveRun, event: ItemDropped) -> None:
    path = path_of(event.node)
    if event.reason == "missed":
        run.misses[path] += 1
    else:
        run.drops[path] += 1


def _run_finished(run: LiveRun, event: RunFinished) -> None:
    run.status = event.status
    run.finished = event.time
    run.done, run.failed = event.done, event.failed


_HANDLERS: dict[type, Callable[[LiveRun, Any], None]] = {
    NodeQueued: _queued, NodeStarted: _node_started, NodeFinished: _node_finished,
    NodeFailed: _node_failed, CacheHit: _cache_hit, ItemStarted: _item_started,
    ItemFinished: _item_finished, ItemDropped: _item_dropped, RunFinished: _run_finished,
}

def _by_second(pairs: Iterable[tuple[float, Any]], now: float) -> dict[int, list[Any]]:
    """Values of ``(time, value)`` pairs of the last SERIES seconds, by second (0: the oldest
    second, SERIES - 1: the one that ends now), in one pass."""
    found: dict[int, list[Any]] = {}
    origin = now - SERIES
    for moment, value in pairs:
        if moment > origin:
            second = min(SERIES - 1, int(moment - origin))
            found.setdefault(second, []).append(value)
    return found


def _copy(tally: NodeTally) -> NodeTally:
    """A copy of a tally to read outside the lock (the durations are copied as a list)."""
    copied = NodeTally()
    copied.count, copied.ok, copied.failed = tally.count, tally.ok, tally.failed
    copied.cached, copied.retries, copied.running = tally.cached, tally.retries, tally.running
    copied.durations.extend(tally.durations)
    copied.sizes.update(tally.sizes)
    return copied


def queue_depth(engine: Engine | None, components: Iterable[str]) -> int | None:
    """Calls waiting in ``engine`` for ``components`` (from ``Engine.snapshot()``; None where
    the engine cannot tell). Blocking up to about a second: call it off the event loop."""
    snapshot = getattr(engine, "snapshot", None)
    if snapshot is None:
        return None
    try:
        taken = snapshot()
    except Exception:
        return None
    states = getattr(taken, "components", {})
    names = set(components)
    return sum(int(getattr(state, "queued", 0)) for name, state in states.items()
               if not names or name in names)


__all__ = ["INTERVAL", "KEEP_FINISHED", "WINDOW", "Hub", "LiveRun", "Watch", "queue_depth"]
