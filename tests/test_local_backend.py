"""The local backend: inline, thread, async and process executors; instance pools that keep
class components warm; worker processes that build once, report remote tracebacks, and die on
timeout and on close."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from pathlib import Path

import pytest

import legato as lg
from harness import WAIT, Background, Events, WatchedClock, alive
from legato.backends.local import LocalBackend, machine_capacity
from legato.backends.workers import RemoteTraceback

# -- process components live at module level: worker processes import them by name ----------

BUILDS = 0  # in a worker process: how many objects this process has built


@lg.component(executor="process", instances=2)
class PidModel:
    def __init__(self, offset: int = 0) -> None:
        global BUILDS
        BUILDS += 1
        self.offset = offset
        self.calls = 0

    def __call__(self, x: int) -> list[int]:
        self.calls += 1
        return [os.getpid(), BUILDS, self.calls, x + self.offset]


@lg.component(executor="process")
def where_am_i(x: int) -> list[int]:
    return [os.getpid(), x * x]


@lg.component(executor="process")
def fails_remotely(x: int) -> int:
    raise ValueError(f"remote failure on {x}")


@lg.component(executor="process", timeout=5.0)
def sleeps_remotely(path: str) -> int:
    Path(path).write_text(str(os.getpid()))
    time.sleep(60)
    return 0


@lg.component(executor="process")
async def async_in_process(x: int) -> int:
    await asyncio.sleep(0)
    return os.getpid()


# -- inline, thread, async ------------------------------------------------------------------


def test_inline_runs_on_the_engine_loop_thread(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def here(x: int) -> str:
        return threading.current_thread().name

    @lg.pipeline
    def p(x: int) -> str:
        return here(x)

    assert p.run(x=1, engine=engine) == "legato-engine"
    assert list(p.map([1, 2], engine=engine)) == ["legato-engine"] * 2


def test_thread_runs_on_a_worker_thread(engine: lg.Engine) -> None:
    @lg.component(executor="thread")
    def there(x: int) -> str:
        return threading.current_thread().name

    @lg.pipeline
    def p(x: int) -> str:
        return there(x)

    assert p.run(x=1, engine=engine).startswith("legato-worker")


def test_async_components_share_one_event_loop_and_run_concurrently(engine: lg.Engine) -> None:
    loops: list[int] = []

    @lg.component
    async def meet(x: int, barrier: object) -> int:
        loops.append(id(asyncio.get_running_loop()))
        assert isinstance(barrier, asyncio.Barrier)
        await asyncio.wait_for(barrier.wait(), WAIT)  # both calls must be awaiting at once
        return x

    @lg.component(executor="inline")
    def join(a: int, b: int) -> int:
        return a + b

    @lg.pipeline
    def p(x: int, y: int, barrier: object) -> int:
        return join(meet(x, barrier), meet(y, barrier))

    assert meet.options.executor == "async"
    assert p.run(x=1, y=2, barrier=asyncio.Barrier(2), engine=engine) == 3
    assert len(loops) == 2
    assert len(set(loops)) == 1


def test_async_component_errors_are_component_errors(engine: lg.Engine) -> None:
    @lg.component
    async def sour(x: int) -> int:
        raise LookupError("no such key")

    @lg.pipeline
    def p(x: int) -> int:
        return sour(x)

    with pytest.raises(lg.ComponentError, match="LookupError: no such key") as info:
        p.run(x=1, engine=engine)
    assert isinstance(info.value.__cause__, LookupError)


def test_async_timeout_cancels_the_task(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    entered, cancelled = threading.Event(), threading.Event()

    @lg.component(timeout=2.0)
    async def forever(x: int) -> int:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return forever(x)

    run = Background(lambda: p.run(x=1, engine=clocked))
    assert entered.wait(WAIT)
    clock.wait_idle()
    clock.advance(2.0)
    with pytest.raises(lg.ComponentTimeout):
        run.result()
    assert cancelled.wait(WAIT)


def test_async_class_component_timeout_cancels_its_task(
    clocked: lg.Engine, clock: WatchedClock
) -> None:
    """Regression: a timed-out call of an async *class* component was abandoned but its task
    kept running on the event loop, since only function calls' futures were cancelled."""
    entered, cancelled = threading.Event(), threading.Event()

    @lg.component(timeout=2.0)
    class Forever:
        async def __call__(self, x: int) -> int:
            entered.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return x

    @lg.pipeline
    def p(x: int) -> int:
        return Forever()(x)

    run = Background(lambda: p.run(x=1, engine=clocked))
    assert entered.wait(WAIT)
    clock.wait_idle()
    clock.advance(2.0)
    with pytest.raises(lg.ComponentTimeout):
        run.result()
    assert cancelled.wait(WAIT)


@pytest.mark.parametrize("executor", ["inline", "thread", "async"])
def test_a_component_raising_system_exit_fails_its_item_instead_of_hanging_the_run(
    engine: lg.Engine, executor: str
) -> None:
    """Regression: only Exception was caught around a call, so a BaseException such as
    SystemExit killed the worker thread (or the task) without a report and the run hung."""
    if executor == "async":

        async def bail(x: int) -> int:
            raise SystemExit(f"bye {x}")
    else:

        def bail(x: int) -> int:
            raise SystemExit(f"bye {x}")

    component = lg.component(executor=executor)(bail)

    @lg.pipeline
    def p(x: int) -> int:
        return component(x)

    run = Background(lambda: list(p.map([1, 2], engine=engine, on_error="collect")))
    results = run.result()
    assert [r.error.detail for r in results] == ["SystemExit: bye 1", "SystemExit: bye 2"]
    assert all(isinstance(r.error.__cause__, SystemExit) for r in results)


def test_class_components_work_on_every_in_process_executor(engine: lg.Engine) -> None:
    builds: list[str] = []

    def make(executor: str) -> lg.Component:
        class Adder:
            def __init__(self, k: int) -> None:
                builds.append(executor)
                self.k = k

            def __call__(self, x: int) -> int:
                return x + self.k

        class AsyncAdder(Adder):
            async def __call__(self, x: int) -> int:  # type: ignore[override]
                return x + self.k

        cls = AsyncAdder if executor == "async" else Adder
        return lg.component(executor=executor, name=f"adder_{executor}")(cls)

    inline, thread, asynchronous = make("inline"), make("thread"), make("async")

    @lg.pipeline
    def p(x: int) -> int:
        return asynchronous(100)(thread(10)(inline(1)(x)))

    assert list(p.map(range(5), engine=engine)) == [111, 112, 113, 114, 115]
    assert sorted(builds) == ["async", "inline", "thread"]


def test_a_redefined_class_component_is_not_served_by_the_old_object(engine: lg.Engine) -> None:
    """Regression: instance pools were keyed by class name and arguments only, so a class
    redefined under the same name (a notebook cell run again) kept the old warm object."""

    def define(answer: int) -> lg.Pipeline:
        @lg.component
        class Oracle:
            def __call__(self, x: int) -> int:
                return answer

        @lg.pipeline
        def ask(x: int) -> int:
            return Oracle()(x)

        return ask

    assert [define(answer).run(x=0, engine=engine) for answer in range(4)] == [0, 1, 2, 3]


# -- processes ------------------------------------------------------------------------------


def test_process_function_component_runs_in_a_worker_process(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> list[int]:
        return where_am_i(x)

    results = list(p.map(range(6), engine=engine))
    assert [square for _, square in results] == [0, 1, 4, 9, 16, 25]
    pids = {pid for pid, _ in results}
    assert os.getpid() not in pids
    assert len(pids) <= machine_capacity()["cpus"]


def test_process_class_component_builds_once_per_worker_process(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> list[int]:
        return PidModel(offset=1000)(x)

    first = list(p.map(range(12), engine=engine, window=6))
    second = list(p.map(range(12, 20), engine=engine))
    results = first + second
    assert [value for *_, value in results] == [1000 + x for x in range(20)]
    pids = {pid for pid, *_ in results}
    assert 1 <= len(pids) <= 2  # instances=2
    assert os.getpid() not in pids
    assert all(builds == 1 for _, builds, _, _ in results)  # __init__ ran once per process
    calls = sorted(c for *_, c, _ in results)
    per_pid = {pid: sorted(c for p_, _, c, _ in results if p_ == pid) for pid in pids}
    assert all(seen == list(range(1, len(seen) + 1)) for seen in per_pid.values())
    assert len(calls) == 20


def test_process_error_carries_the_remote_traceback(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return fails_remotely(x)

    with pytest.raises(lg.ComponentError) as info:
        p.run(x=9, engine=engine)
    error = info.value
    assert (error.node, error.attempt) == ("fails_remotely", 1)
    assert "ValueError: remote failure on 9" in str(error)
    cause = error.__cause__
    assert isinstance(cause, ValueError)
    remote = cause.__cause__
    assert isinstance(remote, RemoteTraceback)
    assert "Traceback (most recent call last)" in remote.text
    assert "in fails_remotely" in remote.text


def test_process_runs_async_functions_too(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return async_in_process(x)

    assert p.run(x=1, engine=engine) != os.getpid()


def test_process_components_defined_in_one_place_each_run_their_own_code(
    engine: lg.Engine,
) -> None:
    """Regression: pickled functions were cached by id(component); once a component was
    collected its id could be reused by a new one, which then ran the old function."""

    def define(k: int) -> lg.Pipeline:
        @lg.component(executor="process")
        def add_k(x: int) -> int:
            return x + k

        @lg.pipeline
        def p(x: int) -> int:
            return add_k(x)

        return p

    results = []
    for k in range(12):
        results.append(define(k).run(x=0, engine=engine))
        gc.collect()
    assert results == list(range(12))


def test_process_timeout_kills_the_worker(
    clocked: lg.Engine, clock: WatchedClock, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"

    @lg.pipeline
    def p(path: str) -> int:
        return sleeps_remotely(path)

    run = Background(lambda: p.run(path=str(marker), engine=clocked))
    deadline = time.monotonic() + WAIT
    while not marker.exists() or not marker.read_text():  # the call is running in its worker
        assert time.monotonic() < deadline, "the worker never started the call"
        time.sleep(0.01)
    pid = int(marker.read_text())
    assert alive(pid)
    clock.wait_idle()
    clock.advance(5.0)
    with pytest.raises(lg.ComponentTimeout, match=r"timeout=5\.0s"):
        run.result()
    assert not alive(pid)


def test_closing_the_backend_stops_its_worker_processes() -> None:
    engine = lg.Engine(LocalBackend(cpus=1))

    @lg.pipeline
    def p(x: int) -> list[int]:
        return where_am_i(x)

    pid, _ = p.run(x=2, engine=engine)
    assert alive(pid)
    engine.close()
    assert not alive(pid)
    with pytest.raises(lg.RunError, match="the engine is closed; create a new engine"):
        p.run(x=2, engine=engine)


# -- capacity -------------------------------------------------------------------------------


def test_capacity_is_the_machine_unless_overridden() -> None:
    machine = machine_capacity()
    assert machine["cpus"] >= 1
    assert machine["memory"] > 0
    assert machine["gpus"] == 0
    backend = LocalBackend(cpus=3, memory=2**30, resources={"asr": 2})
    assert backend.capacity() == {"cpus": 3.0, "memory": float(2**30), "gpus": 0.0, "asr": 2.0}
    backend.close()


def test_usage_recording_closed_in_another_context_is_quiet() -> None:
    import contextvars

    from legato.usage import recording

    block = recording()  # entered in one context, left from another (a coroutine closed by GC)
    contextvars.Context().run(block.__enter__)
    contextvars.Context().run(block.__exit__, None, None, None)
