"""Events: every state change of a run, published on an in-process bus.

The engine publishes; subscribers (progress bars, event files, later the run store, metrics and
the web UI) listen. Publishing is a plain loop over the subscribers on the engine's thread, and
the engine builds an event only when a subscriber takes its kind (``bus.wants(kind)``), so an
unobserved run pays nothing. A subscriber must return quickly: one that does real work (writing
a database) queues the event and does it on its own thread.

Times are the engine clock's seconds (monotonic); ``wall`` on RunStarted maps them to the epoch.

Events are slots dataclasses, read-only by contract but not ``frozen``: a frozen dataclass's
``__init__`` sets each field through ``object.__setattr__`` and costs about four times as much
(1.3 µs against 0.3 µs for ``NodeFinished``), paid three times per node whenever anyone
listens (benchmark B1-rec). A subscriber must not change an event; others share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, kw_only=True)
class RunStarted:
    """A run began: its id, the pipeline's name, and ``wall`` (epoch seconds) at ``time``."""

    run: str
    pipeline: str
    time: float
    wall: float
    mode: str = "run"  # "run" | "map" | "stream" | "serve"


@dataclass(slots=True, kw_only=True)
class ItemStarted:
    """An item entered its run: its ``inputs`` (shared, not copied), and ``context``, what its
    submitter passed along with it (``run.submit(..., context=...)``: a served request's W3C
    ``traceparent`` and ``tracestate`` headers)."""

    run: str
    item: int
    time: float
    inputs: Mapping[str, Any] | None = None
    context: Mapping[str, str] | None = None


@dataclass(slots=True, kw_only=True)
class NodeQueued:
    """A node's inputs are all there: it waits for its turn (admission, a batch, a retry).
    ``node`` is the execution's path (``score``, ``refine[2]/score``); ``component`` the name of
    the component it calls."""

    run: str
    item: int
    node: str
    attempt: int
    time: float
    component: str = ""


@dataclass(slots=True, kw_only=True)
class NodeStarted:
    """A call began executing (on its worker). ``batch`` is the id of the batch call it is part
    of (0: not a batch; see :class:`BatchFormed`), ``batch_size`` that call's size."""

    run: str
    item: int
    node: str
    attempt: int
    time: float
    component: str = ""
    batch: int = 0
    batch_size: int = 1


@dataclass(slots=True, kw_only=True)
class NodeFinished:
    """A call returned: its outputs by port, where it ran and when (``queued``: when its
    inputs were all there)."""

    run: str
    item: int
    node: str
    attempt: int
    start: float
    end: float
    executor: str
    worker: str = ""
    queued: float | None = None
    outputs: Mapping[str, Any] | None = None  # by port; the values themselves, not copies
    cache_key: str | None = None  # set when the outputs are to be cached under this key
    component: str = ""
    batch: int = 0
    batch_size: int = 1


@dataclass(slots=True, kw_only=True)
class NodeFailed:
    """A call raised (or timed out); ``will_retry`` says whether another attempt follows."""

    run: str
    item: int
    node: str
    attempt: int
    start: float
    end: float
    error: str
    will_retry: bool
    worker: str = ""
    queued: float | None = None
    exception: BaseException | None = None  # for the traceback (formatted by the subscriber)
    executor: str = ""
    component: str = ""
    batch: int = 0
    batch_size: int = 1


@dataclass(slots=True, kw_only=True)
class CacheHit:
    """A node's outputs were reused instead of computed: from the cache (same component
    fingerprint, same inputs) or, when a run resumes, from that run's own record."""

    run: str
    item: int
    node: str
    key: str
    source: str  # "cache" | "resume"
    time: float
    component: str = ""


@dataclass(slots=True, kw_only=True)
class ItemFinished:
    """Every node of one item is done: ``ok`` with its ``result``, or its ``error``; or it was
    ``cancelled`` (``ok`` False: not an outcome, and not recorded, so a resume computes it)."""

    run: str
    item: int
    ok: bool
    time: float
    error: str | None = None
    result: Any = None
    reused: bool = False  # a resumed run's item whose result was recorded before
    cancelled: bool = False
    exception: BaseException | None = None  # the error itself (``error`` is its text)


@dataclass(slots=True, kw_only=True)
class RunFinished:
    """A run ended: ``status`` is ``ok``, ``failed`` or ``cancelled``, with the items
    done and failed."""

    run: str
    status: str  # "ok" | "failed" | "cancelled"
    time: float
    done: int
    failed: int


@dataclass(slots=True, kw_only=True)
class BatchFormed:
    """Calls to a batched component were sent together: how many, and why now (``"full"``: it
    reached max_size; ``"wait"``: its oldest call waited max_wait; ``"deadline"``: waiting
    longer would miss the oldest call's deadline; ``"room"``: it waited for an instance)."""

    component: str
    size: int
    reason: str
    time: float
    runs: int = 1  # how many runs' calls it holds
    batch: int = 0  # the batch call's id, as its members' NodeStarted/NodeFinished give it
    members: tuple[tuple[str, int, str], ...] = ()  # (run, item, node path) of each call


@dataclass(slots=True, kw_only=True)
class InstanceBuilt:
    """A class component's slot took its first call: its object is built where it runs."""

    component: str
    slot: int
    time: float


@dataclass(slots=True, kw_only=True)
class InstanceEvicted:
    """A warm instance was dropped (to make room, or given up after its call was abandoned)."""

    component: str
    slot: int
    time: float
    reason: str = "room"


@dataclass(slots=True, kw_only=True)
class ItemDropped:
    """An item ended without a result, by policy, not failure: ``reason`` is ``"replaced"``
    (queue="latest"), ``"queue_full"`` (Fifo(n)), ``"max_age"`` or ``"cancelled"``."""

    run: str
    item: int
    node: str
    reason: str
    time: float


@dataclass(slots=True, kw_only=True)
class AdmissionWaited:
    """A call could not start at once: ``on`` says what it waits for (``"slot"``: a warm
    instance; ``"resource:cpus"``...; ``"rate_limit"``)."""

    run: str
    item: int
    node: str
    on: str
    time: float


Event = (RunStarted | ItemStarted | NodeQueued | NodeStarted | NodeFinished | NodeFailed
         | CacheHit | ItemFinished | RunFinished | BatchFormed | InstanceBuilt | InstanceEvicted
         | ItemDropped | AdmissionWaited)
Subscriber = Callable[[Event], None]
EVENT_KINDS: tuple[type, ...] = (
    RunStarted, ItemStarted, NodeQueued, NodeStarted, NodeFinished, NodeFailed, CacheHit,
    ItemFinished, RunFinished, BatchFormed, InstanceBuilt, InstanceEvicted, ItemDropped,
    AdmissionWaited)


def component_of(node: str) -> str:
    """A node path's component part, without map or loop indices: ``refine[2]/score`` ->
    ``score``; ``embed[3]`` -> ``embed``. For events that carry no ``component`` (published by
    code other than the engine)."""
    name = node[node.rfind("/") + 1:]
    bracket = name.find("[")
    return name if bracket < 0 else name[:bracket]


class EventBus:
    """Subscribers in the order they subscribed; ``publish`` calls each that takes the event's
    kind. A subscriber may name the kinds it takes (``subscribe(fn, kinds=...)``): the engine
    asks ``wants(kind)`` before building an event nobody takes (the run store's recorder takes
    no ``NodeQueued``, so a recorded run does not build one per node)."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, frozenset[type] | None]] = []
        self._by_kind: dict[type, tuple[Subscriber, ...]] = {}
        self._logged: set[str] = set()

    @property
    def active(self) -> bool:
        """True when anyone listens; the engine skips building events otherwise."""
        return bool(self._subscribers)

    def wants(self, kind: type) -> bool:
        """True when a subscriber takes events of ``kind``."""
        return kind in self._by_kind

    def subscribe(self, subscriber: Subscriber,
                  kinds: Iterable[type] | None = None) -> Callable[[], None]:
        """Start calling ``subscriber(event)`` for events of ``kinds`` (None: every kind);
        returns the function that stops it."""
        entry = (subscriber, None if kinds is None else frozenset(kinds))
        self._subscribers.append(entry)
        self._index()

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)
                self._index()

        return unsubscribe

    def _index(self) -> None:
        """Rebuild the subscribers by kind (a new dict: a publish under way keeps the old)."""
        by_kind: dict[type, tuple[Subscriber, ...]] = {}
        for kind in EVENT_KINDS:
            taking = tuple(fn for fn, kinds in self._subscribers if kinds is None or kind in kinds)
            if taking:
                by_kind[kind] = taking
        self._by_kind = by_kind

    def publish(self, event: Event) -> None:
        """Call every subscriber that takes ``event``'s kind; one that raises is logged once
        (by name) and never stops the engine, nor the subscribers after it."""
        for subscriber in self._by_kind.get(event.__class__, ()):
            try:
                subscriber(event)
            except Exception:
                self._failed(subscriber)

    def _failed(self, subscriber: Subscriber) -> None:
        name = getattr(subscriber, "__qualname__", None) or type(subscriber).__qualname__
        if name in self._logged:
            return
        self._logged.add(name)
        import logging

        logging.getLogger("legato").exception("event subscriber %s raised; it is skipped for "
                                              "this event (logged once)", name)
