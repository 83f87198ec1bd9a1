"""The service's life: one long-lived run per pipeline, opened at start and closed at the end,
and the state ``/readyz`` reports.

States: ``starting`` (runs being opened; ``/readyz`` 503) -> ``ready`` (requests admitted) ->
``draining`` (SIGTERM: ``/readyz`` 503, new requests 503, in-flight ones finish, up to the drain
timeout) -> ``stopped`` (each run closed, waited for, cancelled if it still has items past the
timeout, and its record marked finished).

Warm-up: ready means each pipeline's run is open, its graph checked, and every class
component's first instance built where its calls will run (``Engine.warm``; a backend that
cannot build ahead is warmed by the first request).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from legato import engines
from legato.engine import Engine, Run
from legato.errors import ConfigError
from legato.pipeline import Pipeline
from legato.serve.admission import Gate
from legato.serve.config import ServeOptions
from legato.serve.models import Ports, ports

if TYPE_CHECKING:
    from legato.store.session import Recording

log = logging.getLogger("legato.serve")

State = Literal["starting", "ready", "draining", "stopped"]


@dataclass
class Served:
    """One pipeline being served: its models, its admission gate, its open run."""

    name: str
    pipeline: Pipeline
    ports: Ports
    gate: Gate
    run: Run | None = None
    recording: Recording | None = field(default=None, repr=False)


class Service:
    """The served pipelines and the service's state (see the module docstring)."""

    def __init__(self, pipelines: Sequence[Pipeline], options: ServeOptions, *,
                 engine: Engine | None = None) -> None:
        if not pipelines:
            raise ConfigError("serve needs at least one pipeline")
        self.options = options
        self.engine = engine
        self.served: dict[str, Served] = {}
        for pipeline in pipelines:
            if pipeline.name in self.served:
                raise ConfigError(f"two served pipelines are named '{pipeline.name}': "
                                  "give one another name (@lg.pipeline(name=...))")
            self.served[pipeline.name] = Served(pipeline.name, pipeline,
                                                ports(pipeline.graph), Gate(options.max_queue))
        self.state: State = "starting"
        self.error: BaseException | None = None
        self.counts: Counter[tuple[str, int]] = Counter()  # responses by pipeline, status
        self.disconnected = 0  # items cancelled because their client went away
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Event()
        self._idle.set()
        self._started = threading.Event()  # set once start() has ended, ready or failed

    # -- starting and stopping (blocking: call from a thread, not the event loop) -------------

    def start(self) -> None:
        """Check each graph and open its run (recorded when a store is given); then ready."""
        store: Any = self.options.store
        if store == "default":
            store = True
        try:
            for served in self.served.values():
                _, served.run, served.recording = served.pipeline._start(
                    None, engine=self.engine, backend=None,
                    resources=self.options.resources or None, store=store, cache=False,
                    run_info={"options": {"mode": "serve"}}, mode="serve")
                served.run.begin()  # observers (the UI, metrics) see the service's run now
            engine = engines.choose(self.engine, None)
            for served in self.served.values():
                engine.warm(served.pipeline.graph)
        except BaseException as exc:
            self.error = exc
            self.stop()
            self._started.set()
            raise
        with self._lock:
            if self.state == "starting":
                self.state = "ready"
        self._started.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the service is ready (True), or failed to start or timed out (False)."""
        self._started.wait(timeout)
        return self.state == "ready"

    def drain(self, timeout: float | None = None) -> bool:
        """Refuse new requests and wait for in-flight ones (True when none is left)."""
        with self._lock:
            if self.state in ("starting", "ready"):
                self.state = "draining"
        return self._idle.wait(self.options.drain_timeout if timeout is None else timeout)

    def abort(self) -> None:
        """Stop now (a second SIGTERM): refuse new requests and cancel every in-flight item
        (their requests get 503)."""
        with self._lock:
            if self.state in ("starting", "ready"):
                self.state = "draining"
        for served in self.served.values():
            if served.run is not None:
                served.run.cancel()

    def stop(self) -> None:
        """Close every run, wait for it (cancel what is left past the drain timeout), and close
        its record. Idempotent."""
        with self._lock:
            if self.state == "stopped":
                return
            self.state = "stopped"
        for served in self.served.values():
            run, recording = served.run, served.recording
            if run is not None:
                run.close()
                if not run.wait(self.options.drain_timeout):
                    log.warning("run %s of '%s' still has items after %ss: cancelling them",
                                run.id, served.name, self.options.drain_timeout)
                    run.cancel()
                    run.wait(10.0)
            if recording is not None:
                try:
                    recording.store.annotate(recording.run_id, {"service": self.summary(served)})
                    recording.close()
                except Exception:
                    log.exception("closing the record of '%s' failed", served.name)
                served.recording = None

    def summary(self, served: Served) -> dict[str, Any]:
        """What the service answered for ``served``, kept in its run's record at the end:
        responses by status, requests refused at the door."""
        responses = {str(status): count for (name, status), count in sorted(self.counts.items())
                     if name == served.name}
        return {"responses": responses, "refused": served.gate.refused}

    # -- requests (the event loop's thread) ---------------------------------------------------

    @property
    def accepting(self) -> bool:
        return self.state == "ready"

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._idle.clear()

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight


__all__ = ["Served", "Service", "State"]
