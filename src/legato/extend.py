"""What a backend author or an event subscriber builds on: one public namespace.

``import legato`` is for people who write and run pipelines; ``legato.extend`` is for people
who add a place for calls to execute (a backend) or a listener to what runs do (a subscriber).
Everything here is also where it is implemented, under ``legato.engine``; import it from here,
which stays stable while the engine's modules move.

**Writing a backend.** A backend executes calls; the engine decides everything else (what runs
next, on which slot, with which GPUs, retries, timeouts). The whole protocol:

- :class:`Backend`: ``capacity()``, ``gpus()``, ``submit(call, done)``, ``cancel(call)``,
  ``evict(target, slot)``, ``close()``; see :mod:`legato.engine.backend` for each verb's rules
  (``cancel`` returns False when the call cannot be stopped and runs on, as a thread does).
- :class:`Call`: one attempt at one node for one item, or for a batch (``call.batch``); its
  ``target`` is a component or a class component's :class:`~legato.Instance` (build it once per
  ``call.slot`` and keep it warm), ``kwargs`` its inputs, ``devices`` the GPUs it may use.
- :data:`Done`: the callable ``submit`` is handed; call it exactly once per call, from any
  thread, with an :class:`Outcome`.
- :class:`Outcome`: ``value`` or ``error``, when the call ran (``start``/``end`` on this
  process's monotonic clock), ``executor`` and ``worker`` for timelines, ``usage`` reported.
- :class:`Values` and :data:`IN_PROCESS`: a backend whose values stay where they were made
  (Ray's object store) implements :class:`Values` so the engine can look into them, and fills
  ``Outcome.outputs`` with :func:`split_returned`, run where the call ran.
- :class:`Gpu`: one GPU device, as ``gpus()`` lists them.
- Errors a backend reports as a call's ``Outcome.error``: the component's own exception as it
  is (its remote traceback as a :class:`RemoteTraceback` cause, when it ran elsewhere);
  :class:`WorkerDied` when the place the call ran is gone (the retry policy applies);
  :class:`RunCancelled` for a call cancelled under it. Errors it raises: :class:`RunError` from
  ``submit`` on a closed backend, :class:`ConfigError` for bad options at construction. Foreign
  errors are translated at the backend's boundary, with the original as ``__cause__``.
- :class:`legato.testing.BackendContract` is the test suite every backend passes: subclass it.

**Time.** :class:`Clock` is the protocol the engine reads time through; :class:`MonotonicClock`
is real time, :class:`ManualClock` moves only when told (``advance``), so tests of timing are
exact. A simulated clock and backend are in :mod:`legato.testing.simulate`.

**Subscribing to events.** Each run's state changes are published on the engine's
:class:`EventBus` (``engine.bus.subscribe(fn)``), as one of the event classes below; a
subscriber must return quickly (queue real work for its own thread) and must not change an
event. :data:`Event` is their union, :data:`Subscriber` a subscriber's type.

- :class:`RunStarted`, :class:`RunFinished`: a run began, ended.
- :class:`NodeQueued`, :class:`NodeStarted`, :class:`NodeFinished`, :class:`NodeFailed`: a
  node's call waited for its turn, began, succeeded, failed.
- :class:`CacheHit`: a node's outputs were reused (cache, or a resumed run's record).
- :class:`ItemStarted`: an item entered its run (its inputs, and the ``context`` its submitter
  passed, such as a W3C ``traceparent``).
- :class:`ItemFinished`: an item ended, with its result or its error; :class:`ItemDropped`:
  an item ended without one, by policy (replaced by a newer one, a full queue, too old).
- :class:`BatchFormed`: calls to a batched component were sent together (how many, and why
  then); :class:`AdmissionWaited`: a call could not start at once (what it waits for).
- :class:`InstanceBuilt`, :class:`InstanceEvicted`: a class component's slot built its object,
  dropped it.
"""

from __future__ import annotations

from legato.engine.backend import (
    IN_PROCESS,
    Backend,
    Call,
    Done,
    Outcome,
    Values,
    split_returned,
)
from legato.engine.clock import Clock, ManualClock, MonotonicClock
from legato.engine.events import (
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
    Subscriber,
)
from legato.engine.resources import Gpu
from legato.errors import (
    ConfigError,
    RemoteTraceback,
    RunCancelled,
    RunError,
    WorkerDied,
)

__all__ = [
    "IN_PROCESS",
    "AdmissionWaited",
    "Backend",
    "BatchFormed",
    "CacheHit",
    "Call",
    "Clock",
    "ConfigError",
    "Done",
    "Event",
    "EventBus",
    "Gpu",
    "InstanceBuilt",
    "InstanceEvicted",
    "ItemDropped",
    "ItemFinished",
    "ItemStarted",
    "ManualClock",
    "MonotonicClock",
    "NodeFailed",
    "NodeFinished",
    "NodeQueued",
    "NodeStarted",
    "Outcome",
    "RemoteTraceback",
    "RunCancelled",
    "RunError",
    "RunFinished",
    "RunStarted",
    "Subscriber",
    "Values",
    "WorkerDied",
    "split_returned",
]
