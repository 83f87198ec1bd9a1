"""The Ray backend: the same graphs, scheduled by legato, executed on a Ray cluster.

What maps to what:

- A stateless component's call is a **Ray task**, asking Ray for the component's resources:
  ``cpus`` -> ``num_cpus``, ``gpus`` -> ``num_gpus``, ``memory`` -> ``memory``, custom names ->
  ``resources`` (only names the cluster has; a name declared to legato alone, like a licence
  count, is legato's to enforce). ``executor`` does not apply: every call runs in a Ray worker.
- A class component's engine slot (``Call.slot``) is a **Ray actor**, created on the slot's
  first call, holding the instance's resources (memory, GPUs, custom; its calls' CPUs are
  counted by legato) and building the object once; ``evict`` ends it.
- A batched component's call (the engine forms batches, across items) is one task or one actor
  call taking the whole batch.
- **Values stay in the cluster.** A call returns each item's outputs port by port as separate
  objects (split where it ran); the engine passes their refs to the next calls, at the top level
  of the arguments, so Ray resolves them where those calls run. The driver fetches a small
  report per call, and the values only where it must look: an item's outputs when the item
  finishes, a branch's condition, and, for ``legato.map``, a list's length when the report did
  not give it (:class:`RemoteValue`).
- **Completions** arrive on Ray's own threads (a future per call's report) and go to the engine
  through ``done``; the engine's thread never waits on Ray except to fetch those few values.
- **Errors** are translated here, once: a component's own exception comes back as itself with
  the remote traceback chained (as from a local worker process); Ray's own errors become
  legato's by the one table in :mod:`legato.backends.ray_errors` (a worker or actor that died
  is :class:`~legato.errors.WorkerDied`: the component's retry policy applies, and an actor
  that died is replaced on the slot's next call); arguments Ray cannot serialise give a
  TypeError naming the component, the port and the value's type. Ray's own retries are off
  (``max_retries=0``): legato's policy is the only one.

Connecting (:mod:`legato.backends.ray_connect`): ``address=None`` starts a local Ray instance,
which :meth:`RayBackend.close`, or the end of the interpreter, shuts down; ``"auto"``,
``"HOST:PORT"`` or ``"ray://HOST:PORT"`` join a running cluster, which is left running. A
process already connected to Ray is used as it is.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from legato.backends.ray_connect import connect, ray_module, shutdown
from legato.backends.ray_errors import translate
from legato.backends.ray_remote import (
    Host,
    Report,
    elements,
    gather,
    layout,
    output_ports,
    parse_layout,
    shape,
    task_body,
)
from legato.component import Component, Instance
from legato.engine.backend import IN_PROCESS, Call, Done, Outcome
from legato.engine.instances import instance_key
from legato.engine.resources import Gpu
from legato.errors import RemoteTraceback, RunError, WorkerDied
from legato.values import fingerprint

_RAY_NAMES = {"CPU": "cpus", "GPU": "gpus", "memory": "memory"}
_NOT_RESOURCES = ("object_store_memory",)


class RemoteValue:
    """A value held in the Ray cluster's object store, as the engine passes it along: its
    ``ref``, and its ``shape`` (a list's length, else its type's name; None: not known)."""

    __slots__ = ("ref", "shape")

    def __init__(self, ref: Any, shape: int | str | None = None) -> None:
        self.ref = ref
        self.shape = shape

    def __reduce__(self) -> Any:
        raise TypeError("a value held in the Ray cluster cannot be pickled as is; fetch it "
                        "first (an item's outputs are fetched when the item finishes)")

    def __repr__(self) -> str:
        return f"<value in the Ray cluster {self.ref.hex()[:16]}>"


class _Running:
    """A call in flight: its report's ref, and the slot key of the actor serving it."""

    __slots__ = ("actor", "key", "ref")

    def __init__(self, ref: Any, key: tuple[str, int] | None, actor: Any) -> None:
        self.ref = ref
        self.key = key
        self.actor = actor


class RayBackend:
    """Executes calls on a Ray cluster; see the module docstring for the mapping.

    ``address``: None to start a local Ray instance (``num_cpus``: its size, default this
    machine's CPUs), or ``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"`` to join a cluster.
    ``timeout``: seconds to wait for a cluster to answer. ``init_kwargs`` go to ``ray.init``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float | None = None,
        timeout: float = 30.0,
        **init_kwargs: Any,
    ) -> None:
        ray = ray_module()
        self._ray = ray
        self.address = address
        self.owns_ray = False
        if not ray.is_initialized():
            self.owns_ray = connect(ray, address, num_cpus, timeout, init_kwargs)
        if self.owns_ray:  # whatever happens to this object, the instance it started ends
            self._finalizer = weakref.finalize(self, shutdown, ray)
        self._capacity = capacity_of(ray.cluster_resources())
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._actors: dict[tuple[str, int], Any] = {}
        self._owners: dict[str, Component] = {}  # held, so ids in slot keys are not reused
        # per component (held, so its id is not reused): its Ray remote function, by returns
        self._tasks: dict[int, tuple[Component, dict[int, Any]]] = {}
        self._host = ray.remote(max_restarts=0, max_task_retries=0)(Host)
        self._elements = ray.remote(num_cpus=0, max_retries=0)(elements)
        self._gather = ray.remote(num_cpus=0, max_retries=0)(gather)
        self._shape = ray.remote(num_cpus=0, max_retries=0)(shape)
        self._digest = ray.remote(num_cpus=0, max_retries=0)(fingerprint)
        self._closed = False

    # -- the Backend protocol -----------------------------------------------------------------

    def capacity(self) -> Mapping[str, float]:
        """The cluster's resources when the backend connected, by legato's names."""
        return dict(self._capacity)

    def gpus(self) -> Sequence[Gpu]:
        """None enumerated: Ray places GPU requests on devices (``CUDA_VISIBLE_DEVICES``)."""
        return ()

    def submit(self, call: Call, done: Done) -> None:
        """Start the call as a task (or an actor call); ``done`` comes from a Ray thread."""
        if self._closed:
            raise RunError("the Ray backend is closed; create a new engine to run again")
        component = call.component
        packed, args = _pack(call)
        items = len(call.batch) if call.batch is not None else 1
        returns = 1 + items * len(output_ports(component))
        key = actor = None
        try:
            if isinstance(call.target, Instance):
                key, actor = self._actor(call.target, call.slot or 0)
                refs = actor.call.options(num_returns=returns).remote(packed, *args)
            else:
                refs = self._task(component, returns).remote(packed, *args)
        except Exception as exc:
            raise unsendable(component, packed, args, exc) from exc
        report, outputs = refs[0], refs[1:]
        with self._lock:
            self._running[call.id] = _Running(report, key, actor)
        report.future().add_done_callback(
            lambda future: self._complete(call, done, future, outputs))

    def cancel(self, call: Call) -> None:
        """A task is cancelled, its worker killed if it runs; an actor's call is left to end
        with the actor, which the engine evicts (Ray cannot interrupt a running actor call)."""
        with self._lock:
            running = self._running.get(call.id)
        if running is not None:
            with contextlib.suppress(Exception):  # already finished, or Ray already gone
                done, _ = self._ray.wait([running.ref], timeout=0)
                if done:  # finished meanwhile: cancelling it now only races its completion,
                    return  # which Ray 2.60 may turn into a failed CHECK that aborts the driver
                self._ray.cancel(running.ref, force=running.key is None)

    def evict(self, target: Instance, slot: int) -> None:
        """End the slot's actor: at once if a call still runs on it, else after it closes the
        object (its ``close()``)."""
        key = (instance_key(target), slot)
        with self._lock:
            actor = self._actors.pop(key, None)
            busy = any(r.key == key for r in self._running.values())
        if actor is not None:
            self._end(actor, busy=busy)

    def close(self) -> None:
        """Cancel what runs, end every actor; shut Ray down if this backend started it."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            running, self._running = list(self._running.values()), {}
            actors, self._actors = list(self._actors.values()), {}
        if self.owns_ray:
            self._finalizer()  # kills every worker and actor with it
            return
        for call in running:
            if call.key is None:
                with contextlib.suppress(Exception):
                    self._ray.cancel(call.ref, force=True)
        for actor in actors:
            self._end(actor, busy=any(call.actor is actor for call in running))

    # -- values (the engine's Values protocol) ------------------------------------------------

    def fetch(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """The values themselves, fetched from the cluster in one request."""
        remote = [(name, v.ref) for name, v in values.items() if isinstance(v, RemoteValue)]
        if not remote:
            return values
        fetched = dict(values)
        for (name, _), value in zip(remote, self._get([ref for _, ref in remote]), strict=True):
            fetched[name] = value
        return fetched

    def elements(self, value: Any) -> list[Any]:
        """A list's elements as separate objects in the cluster (its length from the report,
        or asked of the cluster once)."""
        if not isinstance(value, RemoteValue):
            return IN_PROCESS.elements(value)
        size = value.shape if value.shape is not None else self._get([self._shape.remote(
            value.ref)])[0]
        if isinstance(size, str):
            raise TypeError(f"legato.map needs a list, got {size}")
        if size == 0:
            return []
        refs = self._elements.options(num_returns=size).remote(value.ref, size)
        return [RemoteValue(ref) for ref in (refs if size > 1 else [refs])]

    def gather(self, values: list[Any]) -> Any:
        """A map's results as one list: made in the cluster when any of them is there."""
        if not any(isinstance(v, RemoteValue) for v in values):
            return values
        args = [v.ref if isinstance(v, RemoteValue) else v for v in values]
        return RemoteValue(self._gather.remote(*args), len(values))

    def digest(self, value: Any) -> str | None:
        """A value's fingerprint, for a cache key: computed in the cluster for a value held
        there (only the digest comes back), here for any other."""
        if not isinstance(value, RemoteValue):
            return fingerprint(value)
        try:
            found: str | None = self._get([self._digest.remote(value.ref)])[0]
        except Exception:  # the value is lost, or cannot be read: no key, so no caching
            return None
        return found

    # -- inside -------------------------------------------------------------------------------

    def _get(self, refs: list[Any]) -> list[Any]:
        try:
            return list(self._ray.get(refs))
        except Exception as exc:
            raise translate(exc) from exc

    def _task(self, component: Component, returns: int) -> Any:
        """The Ray remote function for ``component``'s calls returning ``returns`` objects."""
        known = self._tasks.get(component.uid)
        if known is None:
            known = self._tasks[component.uid] = (component, {})
        by_returns = known[1]
        task = by_returns.get(returns)
        if task is None:
            if not by_returns:
                self._share_pickling()
                by_returns[0] = self._ray.remote(task_body(component))
            options = task_options(component.options.resources.as_dict(), self._capacity)
            task = by_returns[returns] = by_returns[0].options(num_returns=returns, **options)
        return task

    def _actor(self, target: Instance, slot: int) -> tuple[tuple[str, int], Any]:
        """The actor of ``target``'s slot, started if it has none."""
        key = (instance_key(target), slot)
        with self._lock:
            actor = self._actors.get(key)
            if actor is None:
                self._share_pickling()
                request = target.component.options.resources.as_dict()
                request.pop("cpus", None)  # a call's CPUs are counted by legato, per call
                options = task_options(request, self._capacity, actor=True)
                actor = self._actors[key] = self._host.options(**options).remote(target)
                self._owners[key[0]] = target.component
            return key, actor

    def _share_pickling(self) -> None:
        """Modules that legato pickles by value (pipeline files loaded by path, which Ray's
        workers cannot import) are pickled by value by Ray's own copy of cloudpickle too."""
        import cloudpickle

        for name in cloudpickle.list_registry_pickle_by_value():
            module = sys.modules.get(name)
            if module is not None:
                self._ray.cloudpickle.register_pickle_by_value(module)

    def _end(self, actor: Any, *, busy: bool) -> None:
        with contextlib.suppress(Exception):  # already dead, or Ray already shut down
            if busy:
                self._ray.kill(actor, no_restart=True)
            else:
                actor.close.remote()

    def _complete(self, call: Call, done: Done, future: Future[Any], outputs: list[Any]) -> None:
        """A call's report arrived (on a Ray thread): tell the engine, exactly once."""
        arrived = time.monotonic()
        with self._lock:
            running = self._running.pop(call.id, None)
        try:
            report = Report(*future.result())
        except BaseException as exc:
            error = translate(exc)
            if running is not None and running.key is not None and isinstance(error, WorkerDied):
                with self._lock:  # the slot's next call starts a new actor
                    if self._actors.get(running.key) is running.actor:
                        del self._actors[running.key]
            done(call, Outcome(error=error, start=arrived, end=arrived, executor="ray"))
            return
        start = arrived - (report.end - report.start)  # this clock; the worker's may differ
        outcome = Outcome(start=start, end=arrived, executor="ray", usage=report.usage,
                          worker=report.worker)
        if report.error is not None:
            report.error.__cause__ = RemoteTraceback(report.traceback)
            outcome.error = report.error
        else:
            outcome.outputs = _item_outputs(call, report, outputs)
        done(call, outcome)


# ---------------------------------------------------------------------------------------------
# Pure helpers


def capacity_of(resources: Mapping[str, float]) -> dict[str, float]:
    """legato's names for a Ray cluster's resources: ``CPU`` -> ``cpus``, ``GPU`` -> ``gpus``,
    ``memory`` stays; custom names as they are (``node:...`` too); object store memory left out.
    """
    capacity = {"cpus": 0.0, "gpus": 0.0, "memory": 0.0}
    for name, amount in resources.items():
        if name not in _NOT_RESOURCES:
            capacity[_RAY_NAMES.get(name, name)] = float(amount)
    return capacity


def task_options(
    request: Mapping[str, float], cluster: Mapping[str, float], *, actor: bool = False
) -> dict[str, Any]:
    """Ray options for a legato resource request (``Resources.as_dict()``): custom names the
    cluster lacks are left to legato; ``gpu_memory`` has no Ray counterpart; Ray's own retries
    are off."""
    options: dict[str, Any] = {"num_cpus": float(request.get("cpus", 0.0))}
    if request.get("gpus"):
        options["num_gpus"] = float(request["gpus"])
    if request.get("memory"):
        options["memory"] = int(request["memory"])
    custom = {name: float(amount) for name, amount in request.items()
              if name not in ("cpus", "gpus", "memory", "gpu_memory") and name in cluster}
    if custom:
        options["resources"] = custom
    if not actor:
        options["max_retries"] = 0
    return options


def unsendable(component: Component, packed: str, args: Sequence[Any], exc: Exception) -> TypeError:
    """The error for arguments Ray could not send, naming the component, port and type."""
    import cloudpickle

    names, size = parse_layout(packed)
    for name, value in zip(names * (size or 1), args, strict=True):
        try:
            cloudpickle.dumps(value)
        except Exception as why:
            return TypeError(f"cannot send input '{name}' of component '{component.name}' to "
                             f"Ray: a {type(value).__name__} cannot be serialised ({why})")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TypeError(f"cannot send the call of component '{component.name}' to Ray: {first}")


def _pack(call: Call) -> tuple[str, list[Any]]:
    """A call as (its layout, its top-level arguments), values held in the cluster as refs."""
    if call.batch is None:
        kwargs = call.kwargs
        return layout(tuple(kwargs), None), [
            value.ref if isinstance(value, RemoteValue) else value for value in kwargs.values()]
    names = tuple(port.name for port in call.component.call_inputs)
    args = [value.ref if isinstance(value, RemoteValue) else value
            for kwargs in call.batch for value in (kwargs[name] for name in names)]
    return layout(names, len(call.batch)), args


def _item_outputs(
    call: Call, report: Report, outputs: list[Any]
) -> list[dict[str, Any] | Exception]:
    """Each item's outputs by port, as values held in the cluster (or the item's misfit)."""
    ports = output_ports(call.component)
    misfits = dict(report.misfits)
    per_item: list[dict[str, Any] | Exception] = []
    for index in range(len(call.batch) if call.batch is not None else 1):
        misfit = misfits.get(index)
        if misfit is not None:
            per_item.append(misfit)
            continue
        base = index * len(ports)
        per_item.append({port: RemoteValue(outputs[base + i], report.shapes[base + i])
                         for i, port in enumerate(ports)})
    return per_item


__all__ = ["RayBackend", "RemoteValue", "capacity_of", "task_options", "translate"]
