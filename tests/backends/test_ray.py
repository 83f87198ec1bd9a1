"""The Ray backend, for what is specific to it: values that stay in the cluster, tasks and
actors, Ray's failures translated, connecting and shutting down. (The graph catalogue and the
engine's behaviour tests run on Ray too, as contract tests: see conftest.)

Components live at module level: Ray's workers import them from this module. The test and a
component never share memory (they are in different processes): they meet in files, and no
test sleeps and hopes; each waits for a condition (a file written, a process gone) up to a
deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import legato as lg
from harness import Background, Events, WatchedClock, alive
from legato.engine.events import CacheHit

pytestmark = pytest.mark.ray
pytest.importorskip("ray")

from legato.backends.ray import RayBackend  # noqa: E402
from legato.backends.workers import WorkerDied  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # seconds a cross-process condition may take (a new Ray worker starts slowly)


def wait_until(condition: Callable[[], object], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < end, f"timed out after {DEADLINE}s waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def ray_engine(ray_cluster: RayBackend) -> Iterator[lg.Engine]:
    """An engine over a Ray backend joined to the session's instance; closed after the test."""
    with lg.Engine(RayBackend()) as engine:
        yield engine


@pytest.fixture
def ray_clocked(ray_cluster: RayBackend, clock: WatchedClock) -> Iterator[lg.Engine]:
    """``ray_engine`` whose time is the test's ``clock``."""
    with lg.Engine(RayBackend(), clock=clock) as engine:
        yield engine


# -- values stay in the cluster ----------------------------------------------------------------

UNPICKLED_IN_DRIVER: list[int] = []  # payloads of Heavy values unpickled in the test's process


def _unpickle_heavy(payload: int, driver: int) -> Heavy:
    if os.getpid() == driver:
        UNPICKLED_IN_DRIVER.append(payload)
    return Heavy(payload, driver)


class Heavy:
    """A value that notes, in the driver's process only, each time it is unpickled there."""

    def __init__(self, payload: int, driver: int) -> None:
        self.payload = payload
        self.driver = driver

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle_heavy, (self.payload, self.driver))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Heavy) and other.payload == self.payload


@lg.component
def make_heavy(x: int, driver: int) -> Heavy:
    return Heavy(10 * x, driver)


@lg.component
def make_heavies(n: int, driver: int) -> list[Heavy]:
    return [Heavy(i, driver) for i in range(n)]


@lg.component
def weigh(h: Heavy) -> int:
    return h.payload + 1


@lg.component
def total(xs: list[int]) -> int:
    return sum(xs)


@lg.pipeline
def heavy_chain(x: int, driver: int) -> int:
    return weigh(make_heavy(x, driver))


@lg.pipeline
def heavy_fan(n: int, driver: int) -> int:
    return total(lg.map(weigh, make_heavies(n, driver)))


@lg.pipeline
def heavy_out(x: int, driver: int) -> Heavy:
    return make_heavy(x, driver)


def test_an_intermediate_value_never_reaches_the_driver(ray_engine: lg.Engine) -> None:
    UNPICKLED_IN_DRIVER.clear()
    driver = os.getpid()
    assert heavy_chain.run(x=4, driver=driver, engine=ray_engine) == 41
    assert list(heavy_fan.map([{"n": 3, "driver": driver}, {"n": 0, "driver": driver}],
                              engine=ray_engine)) == [6, 0]
    assert UNPICKLED_IN_DRIVER == []


def test_a_pipeline_output_is_fetched_to_the_driver_once(ray_engine: lg.Engine) -> None:
    """The control for the test above: the detector does see a value that reaches us."""
    UNPICKLED_IN_DRIVER.clear()
    assert heavy_out.run(x=2, driver=os.getpid(), engine=ray_engine) == Heavy(20, 0)
    assert UNPICKLED_IN_DRIVER == [20]


@lg.component(cache=True)
def square(x: int) -> int:
    return x * x


@lg.component(cache=True)
def plus_one(x: int) -> int:
    return x + 1


@lg.pipeline
def cached(x: int) -> int:
    return plus_one(square(x))


def test_cached_components_are_reused_from_the_store(ray_engine: lg.Engine, tmp_path: Path) -> None:
    """A cached node's outputs go to the store (so, for once, through the driver); the next run
    finds them there and runs nothing."""
    events = Events()
    ray_engine.bus.subscribe(events)
    store = str(tmp_path / "runs.db")
    assert cached.run(x=3, engine=ray_engine, store=store) == 10
    assert [e.node for e in events.finished()] == ["square", "plus_one"]
    assert cached.run(x=3, engine=ray_engine, store=store) == 10
    assert [e.node for e in events.of(CacheHit)] == ["square", "plus_one"]
    assert len(events.finished()) == 2


@lg.component(cache=True)
def cached_weigh(h: Heavy) -> int:
    return h.payload + 1


@lg.pipeline
def heavy_cached(x: int, driver: int) -> int:
    return cached_weigh(make_heavy(x, driver))


def test_a_cached_node_fed_by_the_cluster_is_keyed_there_and_hit(
    ray_engine: lg.Engine, tmp_path: Path
) -> None:
    """The cached node's input lives in the cluster: its digest is computed there (the value
    never reaches the driver), and the second run is a cache hit for that node."""
    UNPICKLED_IN_DRIVER.clear()
    events = Events()
    ray_engine.bus.subscribe(events)
    store, driver = str(tmp_path / "runs.db"), os.getpid()
    assert heavy_cached.run(x=2, driver=driver, engine=ray_engine, store=store) == 21
    assert heavy_cached.run(x=2, driver=driver, engine=ray_engine, store=store) == 21
    assert [(e.node, e.source) for e in events.of(CacheHit)] == [("cached_weigh", "cache")]
    assert [e.node for e in events.finished()].count("cached_weigh") == 1
    assert heavy_cached.run(x=3, driver=driver, engine=ray_engine, store=store) == 31  # a miss
    assert [e.node for e in events.finished()].count("cached_weigh") == 2
    assert UNPICKLED_IN_DRIVER == []


# -- tasks and actors ------------------------------------------------------------------------


@lg.component
def whereabouts(x: int) -> int:
    return os.getpid()


@lg.pipeline
def locate(x: int) -> int:
    return whereabouts(x)


def test_stateless_components_run_as_ray_tasks_in_worker_processes(
    ray_engine: lg.Engine,
) -> None:
    events = Events()
    ray_engine.bus.subscribe(events)
    pids = set(locate.map(range(4), engine=ray_engine))
    assert os.getpid() not in pids
    finished = events.finished("whereabouts")
    assert {e.executor for e in finished} == {"ray"}
    assert {e.worker for e in finished} == {f"ray-worker-{pid}" for pid in pids}
    assert all(e.end >= e.start for e in finished)


BUILDS = 0  # in an actor's process: how many objects it has built


@lg.component(instances=2)
class Tally:
    def __init__(self, offset: int) -> None:
        global BUILDS
        BUILDS += 1
        self.offset = offset
        self.calls = 0

    def __call__(self, x: int) -> list[int]:
        self.calls += 1
        return [os.getpid(), BUILDS, self.calls, x + self.offset]


@lg.pipeline
def tally(x: int) -> list[int]:
    return Tally(offset=100)(x)


def test_each_slot_of_a_class_component_is_an_actor_built_once(ray_engine: lg.Engine) -> None:
    results = list(tally.map(range(12), engine=ray_engine, window=6))
    results += list(tally.map(range(12, 16), engine=ray_engine))  # the actors stay warm
    assert [value for *_, value in results] == [100 + x for x in range(16)]
    pids = {pid for pid, *_ in results}
    assert 1 <= len(pids) <= 2  # instances=2
    assert os.getpid() not in pids
    assert all(builds == 1 for _, builds, _, _ in results)
    for pid in pids:
        calls = sorted(c for p, _, c, _ in results if p == pid)
        assert calls == list(range(1, len(calls) + 1))


@lg.component(batch=lg.Batch(max_size=4, max_wait_ms=60_000))
class Grouped:
    def __call__(self, xs: list[int]) -> list[list[int]]:
        return [[os.getpid(), len(xs), x * 2] for x in xs]


@lg.pipeline
def grouped(x: int) -> list[int]:
    return Grouped()(x)


def test_a_batched_component_takes_batches_across_items_in_its_actor(
    ray_engine: lg.Engine,
) -> None:
    results = list(grouped.map(range(8), engine=ray_engine))
    assert [doubled for *_, doubled in results] == [2 * x for x in range(8)]
    assert [size for _, size, _ in results] == [4] * 8
    assert len({pid for pid, *_ in results}) == 1


@lg.component
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@lg.component
class LoopCount:
    def __init__(self) -> None:
        self.loops: set[int] = set()

    async def __call__(self, x: int) -> int:
        self.loops.add(id(asyncio.get_running_loop()))
        return len(self.loops)


@lg.pipeline
def asynchronous(x: int) -> int:
    return LoopCount()(async_double(x))


def test_async_components_run_and_an_actor_keeps_one_event_loop(ray_engine: lg.Engine) -> None:
    assert list(asynchronous.map(range(5), engine=ray_engine)) == [1] * 5


# -- retries, timeouts, cancellation -------------------------------------------------------------


@lg.component(retries=lg.Retry(attempts=3))
def third_time_lucky(path: str) -> int:
    marker = Path(path)
    attempt = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempt))
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt} refused")
    return attempt


@lg.pipeline
def lucky(path: str) -> int:
    return third_time_lucky(path)


def test_a_failed_call_is_retried_by_its_policy(ray_engine: lg.Engine, tmp_path: Path) -> None:
    events = Events()
    ray_engine.bus.subscribe(events)
    assert lucky.run(path=str(tmp_path / "attempts"), engine=ray_engine) == 3
    assert [(e.attempt, e.will_retry) for e in events.failed()] == [(1, True), (2, True)]
    assert all("ConnectionError: attempt" in e.error for e in events.failed())


def _pid_in(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text(), f"a pid in {path.name}")
    return int(path.read_text())


@lg.component
def sleeps(path: str) -> int:
    """Writes its pid, then sleeps a minute (or returns at once when ``path`` is empty)."""
    if path:
        Path(path).write_text(str(os.getpid()))
        time.sleep(60)
    return os.getpid()


hangs = sleeps.with_options(timeout=5.0)


@lg.pipeline
def hanging(path: str) -> int:
    return hangs(path)


def test_a_call_past_its_timeout_fails_and_its_worker_is_killed(
    ray_clocked: lg.Engine, clock: WatchedClock, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    run = Background(lambda: hanging.run(path=str(marker), engine=ray_clocked))
    pid = _pid_in(marker)
    clock.wait_idle()
    clock.advance(5.0)
    with pytest.raises(lg.ComponentTimeout, match=r"timeout=5\.0s"):
        run.result(DEADLINE)
    wait_until(lambda: not alive(pid), "the timed-out call's worker to be killed")


@lg.component(retries=1)
class HangsOnce:
    """The first call (the marker not yet written) writes its pid and sleeps a minute."""

    def __call__(self, path: str) -> int:
        marker = Path(path)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(60)
        return os.getpid()


@lg.pipeline
def hangs_once(path: str) -> int:
    return HangsOnce()(path)


def test_an_actor_killed_mid_call_is_replaced_and_the_call_retried(
    ray_engine: lg.Engine, tmp_path: Path
) -> None:
    events = Events()
    ray_engine.bus.subscribe(events)
    marker = tmp_path / "pid"
    run = Background(lambda: hangs_once.run(path=str(marker), engine=ray_engine))
    victim = _pid_in(marker)
    os.kill(victim, signal.SIGKILL)
    survivor = run.result(DEADLINE)
    assert survivor != victim
    failed = events.failed("hangs_once")
    assert [(e.attempt, e.will_retry) for e in failed] == [(1, True)]
    assert "WorkerDied" in failed[0].error


def test_a_timed_out_actor_call_ends_the_actor_and_the_retry_gets_a_new_one(
    ray_clocked: lg.Engine, clock: WatchedClock, tmp_path: Path
) -> None:
    @lg.pipeline
    def p(path: str) -> int:
        return HangsOnce.with_options(timeout=5.0)()(path)

    marker = tmp_path / "pid"
    run = Background(lambda: p.run(path=str(marker), engine=ray_clocked))
    victim = _pid_in(marker)
    clock.wait_idle()
    clock.advance(5.0)
    assert run.result(DEADLINE) != victim
    wait_until(lambda: not alive(victim), "the timed-out actor to end")


@lg.component
class Fragile:
    """Item 'hang' writes its pid and sleeps; the others return their tag."""

    def __call__(self, tag: str, path: str) -> str:
        if tag == "hang":
            Path(path).write_text(str(os.getpid()))
            time.sleep(60)
        return tag


@lg.pipeline
def fragile(tag: str, path: str) -> str:
    return Fragile()(tag, path)


def test_an_actor_killed_without_retries_fails_only_its_item(
    ray_engine: lg.Engine, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    items = [{"tag": tag, "path": str(marker)} for tag in ("a", "hang", "b", "c")]
    run = Background(lambda: list(fragile.map(items, engine=ray_engine, on_error="collect")))
    os.kill(_pid_in(marker), signal.SIGKILL)
    results = run.result(DEADLINE)
    assert [results[i] for i in (0, 2, 3)] == ["a", "b", "c"]
    failure = results[1]
    assert isinstance(failure, lg.Failure)
    assert isinstance(failure.error, lg.ComponentError)
    assert (failure.error.node, failure.error.item) == ("fragile", 1)
    assert isinstance(failure.error.__cause__, WorkerDied)


@lg.pipeline
def napping(path: str) -> int:
    return sleeps(path)


def test_closing_a_map_early_cancels_its_ray_tasks(ray_engine: lg.Engine, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    results = napping.map([{"path": ""}, {"path": str(marker)}], engine=ray_engine)
    assert next(results) != os.getpid()
    pid = _pid_in(marker)
    results.close()
    wait_until(lambda: not alive(pid), "the cancelled call's worker to be killed")


# -- bad input --------------------------------------------------------------------------------


@lg.component
def hold(thing: Any) -> int:
    return 1


@lg.pipeline
def holding(thing: Any) -> int:
    return hold(thing)


def test_an_argument_ray_cannot_serialise_names_the_component_and_the_type(
    ray_engine: lg.Engine,
) -> None:
    import threading

    with pytest.raises(lg.ComponentError) as info:
        holding.run(thing=threading.Lock(), engine=ray_engine)
    message = str(info.value)
    assert "cannot send input 'thing' of component 'hold' to Ray" in message
    assert "a lock cannot be serialised" in message
    assert isinstance(info.value.__cause__, TypeError)


@lg.component(resources={"asr": 1})
def transcribe(x: int) -> int:
    return x


@lg.component(cpus=64)
def greedy(x: int) -> int:
    return x


@lg.pipeline
def needs_asr(x: int) -> int:
    return transcribe(x)


@lg.pipeline
def needs_cpus(x: int) -> int:
    return greedy(x)


def test_the_check_names_a_resource_the_cluster_lacks(ray_engine: lg.Engine) -> None:
    with pytest.raises(lg.GraphError, match=r"node 'transcribe'.*resource 'asr'=1, which this "
                                            r"backend does not have"):
        needs_asr.check(engine=ray_engine)
    with pytest.raises(lg.GraphError, match=r"node 'greedy'.*cpus=64, more than this "
                                            r"backend's whole capacity of 2"):
        needs_cpus.check(engine=ray_engine)


def test_a_resource_declared_to_legato_alone_is_enforced_by_legato(
    ray_engine: lg.Engine,
) -> None:
    """Declared with the run, not on the cluster: legato counts it; Ray is not asked for it
    (it would wait forever for a resource no node has)."""
    assert list(needs_asr.map(range(3), engine=ray_engine, resources={"asr": 1})) == [0, 1, 2]


# -- connecting and shutting down ---------------------------------------------------------------


def _python(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "RAY_ADDRESS": ""})


def test_an_address_that_does_not_answer_fails_within_the_timeout() -> None:
    with socket.socket() as refusing, socket.socket() as silent:
        refusing.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, says nothing
        code = f"""
            import time
            from legato.backends.ray import RayBackend
            from legato.errors import ConfigError
            for address in ("127.0.0.1:{refusing.getsockname()[1]}",
                            "127.0.0.1:{silent.getsockname()[1]}"):
                start = time.monotonic()
                try:
                    RayBackend(address, timeout=2.0)
                except ConfigError as exc:
                    print(round(time.monotonic() - start, 1), exc)
        """
        done = _python(code)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stderr[-2000:]
    refused, unanswered = (line.split(" ", 1) for line in lines)
    assert float(refused[0]) < 2.0
    assert "no Ray cluster answers at '127.0.0.1:" in refused[1]
    assert float(unanswered[0]) < 2.0 + 1.0
    assert "did not answer within 2 s" in unanswered[1]


@pytest.mark.parametrize("ending", ["close", "exit"])
def test_a_ray_instance_the_backend_started_ends_with_it(ending: str) -> None:
    code = f"""
        import os, ray
        import legato as lg
        from legato.backends.ray import RayBackend

        @lg.component
        def pid(x: int) -> int:
            return os.getpid()

        @lg.pipeline
        def p(x: int) -> int:
            return pid(x)

        engine = lg.Engine(RayBackend(num_cpus=1))
        print(p.run(x=1, engine=engine), flush=True)
        if {ending == "close"}:
            engine.close()
            print(ray.is_initialized())
    """
    done = _python(code)
    lines = done.stdout.split()
    assert lines, done.stderr[-2000:]
    worker = int(lines[0])
    if ending == "close":
        assert lines[1] == "False"
    wait_until(lambda: not alive(worker), "the Ray worker to end")


def test_backend_ray_runs_a_pipeline_on_one_cached_ray_engine(ray_cluster: RayBackend) -> None:
    from legato.pipeline import ray_engine

    assert locate.run(x=1, backend="ray") != os.getpid()
    engine = ray_engine(None)
    assert ray_engine(None) is engine
    events = Events()
    engine.bus.subscribe(events)
    locate.run(x=2, backend="ray")
    assert [e.executor for e in events.finished()] == ["ray"]


def test_a_closed_backend_refuses_new_calls(ray_cluster: RayBackend) -> None:
    engine = lg.Engine(RayBackend())
    engine.close()
    with pytest.raises(lg.RunError, match="the engine is closed"):
        locate.run(x=1, engine=engine)

