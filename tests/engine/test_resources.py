"""The resource pool: whole requests or nothing, custom names, GPUs placed on devices (best fit
for fractions, whole free devices for ``gpus >= 1``, each device's memory respected), declared
capacity, and the reasons a request can never fit. Two properties: random acquire/release
sequences never exceed any capacity, and random graphs run on a small engine never hold more at
once than it has."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import legato as lg
from legato.backends.local import LocalBackend
from legato.engine.backend import Call, Done, Outcome
from legato.engine.resources import Gpu, Grant, ResourcePool
from legato.options import Resources

GiB = 2**30
EPS = 1e-9


def _req(
    *, cpus: float = 0.0, memory: int = 0, gpus: float = 0.0, gpu_memory: int = 0,
    **custom: float,
) -> Resources:
    return Resources(cpus=cpus, memory=memory, gpus=gpus, gpu_memory=gpu_memory,
                     custom=tuple(sorted(custom.items())))


def _two_gpus(first: int = 16 * GiB, second: int = 16 * GiB) -> ResourcePool:
    return ResourcePool({"cpus": 8}, (Gpu(0, first), Gpu(1, second)))


# -- whole requests or nothing --------------------------------------------------------------


def test_acquire_grants_the_whole_request_or_holds_nothing() -> None:
    pool = ResourcePool({"cpus": 2, "memory": 100, "asr": 1})
    first = pool.acquire(_req(cpus=1, memory=80, asr=1))
    assert first is not None
    assert dict(first.amounts) == {"cpus": 1.0, "memory": 80.0, "asr": 1.0}
    before = dict(pool.usage().used)

    assert pool.acquire(_req(cpus=1, memory=30)) is None  # cpus fit, memory does not
    assert pool.acquire(_req(cpus=1, asr=1)) is None  # cpus fit, asr does not
    assert dict(pool.usage().used) == before  # the cpus that fitted were not kept

    assert pool.acquire(_req(cpus=1, memory=20)) is not None  # exactly what is left
    assert pool.acquire(_req(cpus=0.5)) is None


def test_release_gives_back_exactly_what_was_held_and_wakes_subscribers() -> None:
    pool = ResourcePool({"cpus": 2, "memory": 100})
    woken: list[str] = []
    stop = pool.subscribe(lambda: woken.append("free"))
    grant = pool.acquire(_req(cpus=2, memory=60))
    assert grant is not None
    assert pool.usage().used == {"cpus": 2.0, "memory": 60.0, "gpus": 0.0}
    pool.release(grant)
    assert pool.usage().used == {"cpus": 0.0, "memory": 0.0, "gpus": 0.0}
    assert woken == ["free"]
    stop()
    again = pool.acquire(_req(cpus=1))
    assert again is not None
    pool.release(again)
    assert woken == ["free"]  # unsubscribed: not told again


def test_custom_resources_are_held_and_released_like_cpus() -> None:
    pool = ResourcePool({"cpus": 4, "asr": 2})
    first, second = pool.acquire(_req(asr=1)), pool.acquire(_req(asr=1))
    assert first is not None
    assert second is not None
    assert pool.acquire(_req(asr=1)) is None
    assert pool.acquire(_req(tts=1)) is None  # never declared: never granted
    pool.release(first)
    assert pool.acquire(_req(asr=1)) is not None


def test_a_request_of_nothing_is_always_granted() -> None:
    pool = ResourcePool({"cpus": 0})
    grant = pool.acquire(_req())
    assert grant is not None
    assert grant.amounts == ()
    assert grant.devices == ()


# -- GPUs -------------------------------------------------------------------------------------


def test_a_fractional_gpu_goes_to_the_fullest_device_that_fits() -> None:
    pool = _two_gpus()
    small = pool.acquire(_req(gpus=0.25))
    assert small is not None
    assert small.gpu_ids == (0,)
    whole = pool.acquire(_req(gpus=1))
    assert whole is not None
    assert whole.gpu_ids == (1,)
    pool.release(whole)  # device 0 is 3/4 free, device 1 entirely free

    half = pool.acquire(_req(gpus=0.5))
    assert half is not None
    assert half.devices == ((0, 0.5, 0),)
    again = pool.acquire(_req(gpus=1))
    assert again is not None
    assert again.gpu_ids == (1,)
    assert pool.acquire(_req(gpus=0.5)) is None  # 0.25 left on 0, nothing on 1
    assert pool.acquire(_req(gpus=0.25)) is not None


def test_two_half_gpus_share_one_device() -> None:
    pool = _two_gpus()
    grants = [pool.acquire(_req(gpus=0.5)) for _ in range(2)]
    assert [g.gpu_ids for g in grants if g is not None] == [(0,), (0,)]
    assert pool.usage().used["gpus"] == 1.0


def test_gpu_memory_is_respected_on_each_device() -> None:
    pool = _two_gpus(first=8 * GiB, second=16 * GiB)
    big = pool.acquire(_req(gpus=0.25, gpu_memory=10 * GiB))
    assert big is not None
    assert big.devices == ((1, 0.25, 10 * GiB),)
    # device 1 still has 3/4 of its compute but only 6 GiB; device 0 has 8 GiB in all
    assert pool.acquire(_req(gpus=0.25, gpu_memory=10 * GiB)) is None
    fits_one = pool.acquire(_req(gpus=0.25, gpu_memory=7 * GiB))
    assert fits_one is not None
    assert fits_one.gpu_ids == (0,)
    assert pool.acquire(_req(gpus=0.25, gpu_memory=2 * GiB)) is not None
    pool.release(big)
    assert pool.acquire(_req(gpus=0.25, gpu_memory=10 * GiB)) is not None  # its memory is back


def test_whole_gpus_take_that_many_entirely_free_devices() -> None:
    pool = ResourcePool({"cpus": 8}, (Gpu(0, GiB), Gpu(1, GiB), Gpu(2, GiB)))
    part = pool.acquire(_req(gpus=0.5))
    assert part is not None
    assert part.gpu_ids == (0,)
    pair = pool.acquire(_req(gpus=2))
    assert pair is not None
    assert sorted(pair.gpu_ids) == [1, 2]  # not device 0: it is partly held
    assert all(fraction == 1.0 for _, fraction, _ in pair.devices)
    assert pool.acquire(_req(gpus=1)) is None
    pool.release(pair)
    assert pool.acquire(_req(gpus=3)) is None  # device 0 is still half held
    pool.release(part)
    assert pool.acquire(_req(gpus=3)) is not None


def test_gpus_counted_but_not_enumerated_are_never_handed_out_beyond_capacity() -> None:
    # a backend may report a number of GPUs without listing devices
    pool = ResourcePool({"cpus": 4, "gpus": 2})
    grants = [pool.acquire(_req(gpus=1)) for _ in range(3)]
    assert [g is not None for g in grants] == [True, True, False]
    assert pool.usage().used["gpus"] == 2.0
    assert pool.acquire(_req(gpus=0.5)) is None
    first = grants[0]
    assert first is not None
    pool.release(first)
    assert pool.acquire(_req(gpus=0.5)) is not None
    assert pool.usage().used["gpus"] == 1.5


# -- capacity -----------------------------------------------------------------------------------


def test_declare_adds_and_raises_capacity_and_never_shrinks_it() -> None:
    pool = ResourcePool({"cpus": 2, "asr": 1})
    held = pool.acquire(_req(asr=1))
    assert held is not None
    pool.declare({"asr": 3, "tts": 1, "cpus": 1})
    assert pool.capacity["asr"] == 3
    assert pool.capacity["tts"] == 1
    assert pool.capacity["cpus"] == 2  # lower than before: ignored
    assert pool.usage().used["asr"] == 1  # what was held stays held
    assert [pool.acquire(_req(asr=1)) is not None for _ in range(3)] == [True, True, False]
    assert pool.acquire(_req(tts=1)) is not None


def test_declare_gpus_counts_more_gpus_only_where_none_are_enumerated() -> None:
    counted = ResourcePool({"cpus": 1})
    counted.declare({"gpus": 2})
    assert counted.capacity["gpus"] == 2
    assert [counted.acquire(_req(gpus=1)) is not None for _ in range(3)] == [True, True, False]

    listed = _two_gpus()
    listed.declare({"gpus": 5})
    assert listed.capacity["gpus"] == 2  # the devices are what there is


@pytest.mark.parametrize(("request_", "reason"), [
    (_req(asr=1), "resource 'asr' is not declared"),
    (_req(cpus=9), "cpus=9 is more than the capacity of 8"),
    (_req(gpus=3), "gpus=3 is more than the 2 GPUs here"),
    (_req(gpus=0.5, gpu_memory=20 * GiB),
     "gpu_memory=20.0GiB is more than the largest GPU's 16.0GiB"),
    (_req(gpus=2, gpu_memory=12 * GiB),
     "gpus=2 with gpu_memory=12.0GiB needs 2 with that much memory; only 1 of the 2 GPUs here"),
])
def test_possible_names_why_a_request_can_never_fit(request_: Resources, reason: str) -> None:
    pool = _two_gpus(first=8 * GiB, second=16 * GiB)
    found = pool.possible(request_)
    assert found is not None
    assert reason in found


def test_possible_accepts_what_fits_an_idle_pool_even_while_it_is_full() -> None:
    pool = _two_gpus()
    assert pool.acquire(_req(cpus=8, gpus=2)) is not None  # everything held now
    for fits in (_req(cpus=8), _req(gpus=2), _req(gpus=0.5, gpu_memory=16 * GiB), _req()):
        assert pool.possible(fits) is None
        assert pool.acquire(fits) is None or fits == _req()


# -- property: random acquire/release sequences -----------------------------------------------


@dataclass
class Model:
    """An independent account of the pool: what is free, by name and by device."""

    free: dict[str, float]
    device_free: dict[int, float]
    device_memory: dict[int, int]

    def fits(self, request: Resources, counted: bool) -> bool:
        amounts = [(n, a) for n, a in request.as_dict().items() if n != "gpu_memory"]
        for name, amount in amounts:
            if name == "gpus" and not counted:
                continue
            if self.free.get(name, 0.0) + EPS < amount:
                return False
        if request.gpus == 0 or counted:
            return True
        if request.gpus >= 1:
            whole = [d for d, f in self.device_free.items()
                     if f >= 1 - EPS and self.device_memory[d] >= request.gpu_memory]
            return len(whole) >= request.gpus
        return bool(self.fitting_devices(request))

    def fitting_devices(self, request: Resources) -> list[int]:
        return [d for d, f in self.device_free.items()
                if f + EPS >= request.gpus and self.device_memory[d] >= request.gpu_memory]

    def hold(self, grant: Grant, sign: int) -> None:
        for name, amount in grant.amounts:
            self.free[name] -= sign * amount
        for device, fraction, memory in grant.devices:
            self.device_free[device] -= sign * fraction
            self.device_memory[device] -= sign * memory


@st.composite
def pools(draw: st.DrawFn) -> tuple[dict[str, float], tuple[Gpu, ...]]:
    capacity: dict[str, float] = {
        "cpus": draw(st.sampled_from([1, 2, 4])),
        "memory": draw(st.sampled_from([0, 100, 1000])),
        "a": draw(st.integers(1, 3)),
        "b": draw(st.integers(1, 2)),
    }
    if draw(st.integers(0, 3)) == 0:  # counted GPUs: a number, no devices
        capacity["gpus"] = draw(st.integers(0, 2))
        return capacity, ()
    memories = draw(st.lists(st.sampled_from([0, 8 * GiB, 16 * GiB, 16 * GiB]), min_size=1,
                             max_size=3))
    return capacity, tuple(Gpu(i, m) for i, m in enumerate(memories))


@st.composite
def requests(draw: st.DrawFn) -> Resources:
    """Mostly small requests, so that many are granted and GPUs fill up device by device."""
    gpus = draw(st.sampled_from([0, 0.25, 0.25, 0.5, 0.5, 0.75, 1, 2]))
    custom = {name: draw(st.sampled_from([0, 0, 0, 1, 2])) for name in ("a", "b")}
    if draw(st.integers(0, 19)) == 0:
        custom["undeclared"] = 1
    return _req(
        cpus=draw(st.sampled_from([0, 0, 0.5, 1, 2])),
        memory=draw(st.sampled_from([0, 0, 30, 60, 500])),
        gpus=gpus,
        gpu_memory=draw(st.sampled_from([0, 0, 2 * GiB, 6 * GiB, 12 * GiB])) if gpus else 0,
        **custom,
    )


operations = st.lists(st.one_of(st.tuples(st.just("acquire"), requests()),
                                st.tuples(st.just("release"), st.integers(0, 20))),
                      min_size=10, max_size=40)


@settings(max_examples=200, deadline=None)
@given(machine=pools(), ops=operations)
def test_random_acquires_and_releases_never_exceed_any_capacity(
    machine: tuple[dict[str, float], tuple[Gpu, ...]], ops: list[tuple[str, Any]]
) -> None:
    capacity, gpus = machine
    counted = not gpus
    pool = ResourcePool(capacity, gpus)
    model = Model(free={n: float(v) for n, v in pool.capacity.items()
                        if n != "gpus" or counted},
                  device_free={g.index: 1.0 for g in gpus},
                  device_memory={g.index: g.memory for g in gpus})
    held: list[Grant] = []
    for op, arg in ops:
        if op == "release":
            if held:
                grant = held.pop(arg % len(held))
                pool.release(grant)
                model.hold(grant, -1)
            continue
        request: Resources = arg
        before = dict(pool.usage().used)
        should_fit = model.fits(request, counted)
        best = min((model.device_free[d] for d in model.fitting_devices(request)), default=None)
        grant = pool.acquire(request)
        if grant is None:
            assert not should_fit, f"{request} fits {model} but was refused"
            assert dict(pool.usage().used) == before  # nothing partly held
            continue
        assert should_fit, f"{request} was granted but does not fit {model}"
        if request.gpus and any(f < 1 for f in model.device_free.values()):
            event("GPUs granted beside others")
        expected = {n: a for n, a in request.as_dict().items()
                    if n != "gpu_memory" and (n != "gpus" or counted)}
        assert dict(grant.amounts) == expected
        if request.gpus and not counted:
            if request.gpus < 1:
                ((device, fraction, memory),) = grant.devices
                assert (fraction, memory) == (request.gpus, request.gpu_memory)
                assert model.device_free[device] == best  # the fullest device that fits
            else:
                assert len(set(grant.gpu_ids)) == request.gpus
                assert all(fraction == 1.0 for _, fraction, _ in grant.devices)
        held.append(grant)
        model.hold(grant, +1)
        # never beyond capacity, by name and by device, in the pool's own account too
        used = pool.usage().used
        for name, free in model.free.items():
            assert free >= -EPS, f"{name} over capacity"
            assert used[name] == pytest.approx(pool.capacity[name] - free)
        for device, free in model.device_free.items():
            assert free >= -EPS, f"GPU {device} over capacity"
            assert model.device_memory[device] >= 0, f"GPU {device} memory over capacity"
    for grant in held:
        pool.release(grant)
    assert all(amount == pytest.approx(0.0) for amount in pool.usage().used.values())
    everything = _req(cpus=capacity["cpus"], memory=int(capacity["memory"]),
                      gpus=len(gpus) if gpus else capacity.get("gpus", 0),
                      gpu_memory=min((g.memory for g in gpus), default=0) if gpus else 0,
                      a=capacity["a"], b=capacity["b"])
    assert pool.acquire(everything) is not None  # every device and its memory is back


# -- property: random graphs on a small engine -------------------------------------------------


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory: int
    asr: int
    gpus: int

    def backend(self, ledger: Ledger) -> LedgeredBackend:
        return LedgeredBackend(ledger, cpus=self.cpus, memory=self.memory,
                               resources={"asr": self.asr},
                               gpus=[Gpu(i, 8 * GiB) for i in range(self.gpus)])


@dataclass(frozen=True)
class NodeSpec:
    sources: tuple[str, ...]
    need: Resources


class Ledger:
    """What the running calls hold, counted by the calls themselves (and, per GPU device, by
    the backend around each call); every moment it is checked against the machine."""

    def __init__(self, machine: Machine) -> None:
        self.capacity = {"cpus": float(machine.cpus), "memory": float(machine.memory),
                         "asr": float(machine.asr), "gpus": float(machine.gpus)}
        self.in_use = dict.fromkeys(self.capacity, 0.0)
        self.devices = {i: [0.0, 0] for i in range(machine.gpus)}  # fraction, memory
        self.peak = dict.fromkeys(self.capacity, 0.0)
        self.overruns: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def enter(self, need: Resources, sign: int = 1) -> None:
        amounts = {"cpus": need.cpus, "memory": need.memory, "gpus": need.gpus,
                   **dict(need.custom)}
        with self._lock:
            self.calls += sign > 0
            for name, amount in amounts.items():
                self.in_use[name] += sign * amount
                self.peak[name] = max(self.peak[name], self.in_use[name])
                if self.in_use[name] > self.capacity[name] + EPS:
                    self.overruns.append(f"{name}: {self.in_use[name]} held at once")

    def on_devices(self, devices: tuple[int, ...], need: Resources, sign: int) -> None:
        fraction = need.gpus if need.gpus < 1 else 1.0
        memory = need.gpu_memory if need.gpus < 1 else need.gpu_memory // max(1, len(devices))
        with self._lock:
            if need.gpus and len(devices) != max(1, int(need.gpus)):
                self.overruns.append(f"{need.gpus} GPUs placed on devices {devices}")
            for device in devices:
                self.devices[device][0] += sign * fraction
                self.devices[device][1] += sign * memory
                if self.devices[device][0] > 1 + EPS or self.devices[device][1] > 8 * GiB:
                    self.overruns.append(f"GPU {device} holds {self.devices[device]}")


class LedgeredBackend(LocalBackend):
    """The local backend, noting each call's GPU devices from submit until it reports."""

    def __init__(self, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger

    def submit(self, call: Call, done: Done) -> None:
        need = call.component.options.resources
        self.ledger.on_devices(call.devices, need, +1)

        def report(finished: Call, outcome: Outcome) -> None:
            self.ledger.on_devices(call.devices, need, -1)
            done(finished, outcome)

        super().submit(call, report)


@st.composite
def machines(draw: st.DrawFn) -> Machine:
    return Machine(cpus=draw(st.integers(1, 3)), memory=draw(st.sampled_from([100, 200])),
                   asr=draw(st.integers(1, 2)), gpus=draw(st.integers(0, 2)))


@st.composite
def needs(draw: st.DrawFn, machine: Machine) -> Resources:
    gpu_choices = [0.0, 0.5, 1.0, 2.0][: 1 + 2 * (machine.gpus > 0) + (machine.gpus > 1)]
    gpus = draw(st.sampled_from(gpu_choices))
    return _req(
        cpus=draw(st.sampled_from([c for c in (0, 0.5, 1, 2, 3) if c <= machine.cpus])),
        memory=draw(st.sampled_from([m for m in (0, 50, 100, 200) if m <= machine.memory])),
        gpus=gpus,
        gpu_memory=draw(st.sampled_from([0, 4 * GiB, 8 * GiB])) if gpus else 0,
        asr=draw(st.integers(0, machine.asr)),
    )


@st.composite
def graphs(draw: st.DrawFn, machine: Machine) -> tuple[NodeSpec, ...]:
    nodes = []
    for index in range(draw(st.integers(1, 6))):
        available = ["x"] + [f"n{j}" for j in range(index)]
        sources = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3))
        nodes.append(NodeSpec(tuple(sources), draw(needs(machine))))
    return tuple(nodes)


def _counted(index: int, node: NodeSpec, ledger: Ledger) -> lg.Component:
    """Node ``index``: the sum of its inputs plus its index, holding the ledger while it runs."""
    names = [f"a{j}" for j in range(len(node.sources))]
    need = node.need

    def fn(**kwargs: int) -> int:
        ledger.enter(need, +1)
        try:
            time.sleep(0.001)  # stay a moment, so calls that were (wrongly) let in overlap
            return sum(kwargs.values()) + index
        finally:
            ledger.enter(need, -1)

    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int)
         for n in names], return_annotation=int)
    fn.__annotations__ = {**dict.fromkeys(names, int), "return": int}
    fn.__name__ = fn.__qualname__ = f"n{index}"
    custom = dict(need.custom)
    return lg.component(cpus=need.cpus, memory=need.memory, gpus=need.gpus,
                        gpu_memory=need.gpu_memory or None, resources=custom)(fn)


def _pipeline(nodes: tuple[NodeSpec, ...], ledger: Ledger) -> tuple[lg.Pipeline, Callable]:
    components = [_counted(i, node, ledger) for i, node in enumerate(nodes)]

    def body(x: int) -> dict[str, Any]:
        env: dict[str, Any] = {"x": x}
        for index, node in enumerate(nodes):
            env[f"n{index}"] = components[index](*(env[s] for s in node.sources))
        return {f"n{i}": env[f"n{i}"] for i in range(len(nodes))}

    def expected(x: int) -> dict[str, int]:
        env = {"x": x}
        for index, node in enumerate(nodes):
            env[f"n{index}"] = sum(env[s] for s in node.sources) + index
        return {f"n{i}": env[f"n{i}"] for i in range(len(nodes))}

    body.__annotations__ = {"x": int}
    return lg.pipeline(body, name="packed"), expected


@settings(max_examples=30, deadline=None)
@given(data=st.data(), machine=machines())
def test_random_graphs_never_hold_more_at_once_than_the_engine_has(
    data: st.DataObject, machine: Machine
) -> None:
    nodes = data.draw(graphs(machine), label="nodes")
    xs = data.draw(st.lists(st.integers(-100, 100), min_size=1, max_size=4), label="xs")
    window = data.draw(st.integers(1, 4), label="window")
    ledger = Ledger(machine)
    pipeline, expected = _pipeline(nodes, ledger)
    with lg.Engine(machine.backend(ledger)) as engine:
        for node in nodes:
            assert engine.pool.possible(node.need) is None  # each fits the machine alone
        results = list(pipeline.map(xs, engine=engine, window=window))
        assert all(amount == 0 for amount in engine.usage().used.values())
    assert results == [expected(x) for x in xs]
    assert ledger.calls == len(nodes) * len(xs)
    assert ledger.overruns == []
    assert all(held == 0 for held in ledger.in_use.values())
    for name, peak in ledger.peak.items():
        if peak and peak == ledger.capacity[name]:
            event(f"{name} held to capacity")
