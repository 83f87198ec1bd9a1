"""The backend contract: the tests every backend passes, as a class a backend author subclasses.

::

    from legato.testing import BackendContract

    class TestMyBackend(BackendContract):
        def make_backend(self) -> MyBackend:
            return MyBackend()

pytest collects the subclass (its name starts with ``Test``) and runs every ``test_*`` method
below against a fresh backend from :meth:`~BackendContract.make_backend`, closed after each
test. Two kinds of test:

- **the protocol** (:mod:`legato.engine.backend`), driven by hand: ``capacity()`` by legato's
  names, ``submit`` reporting each call through ``done`` exactly once, ``cancel`` and
  ``close`` safe at any time, ``submit`` on a closed backend a :class:`~legato.errors.RunError`;
- **pipelines run by an engine over the backend**: values of every plain kind round trip;
  several named outputs; a component's error comes back as a
  :class:`~legato.errors.ComponentError` with the original chained, and is retried; a call
  past its ``timeout`` is a :class:`~legato.errors.ComponentTimeout`, an item past its
  ``deadline`` a :class:`~legato.errors.DeadlineExceeded` (its call cancelled); components declared
  for each executor the backend supports (``inline``, ``thread``, ``process``, ``async``) run;
  batched components get batches of several items; a class component's object is built once
  per slot and serves every call there; a worker that dies is reported as
  :class:`~legato.errors.WorkerDied` (the retry policy applies).

What a backend cannot do is said with class attributes: :attr:`~BackendContract.executors`
(the executors whose components it runs), :attr:`~BackendContract.workers_can_die` (False for
a backend with no worker to lose). A backend with its own clock (a simulated one) overrides
:meth:`~BackendContract.make_clock` and :meth:`~BackendContract.settle`.

The components it runs are in :mod:`legato.testing.parts`, at that module's top level, so that
a backend running calls in other processes can import them by name. This module imports
pytest; ``import legato`` and ``import legato.testing`` do not import it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from legato.engine import Engine
from legato.engine.backend import Backend, Call, Outcome, split_value, values_of
from legato.engine.clock import Clock
from legato.engine.events import Event, NodeFailed
from legato.errors import (
    ComponentError,
    ComponentTimeout,
    DeadlineExceeded,
    RunError,
    WorkerDied,
)
from legato.pipeline import pipeline
from legato.testing.parts import (
    Counter,
    ProcessCounter,
    Sample,
    async_square,
    batched,
    dies,
    dies_once,
    double,
    echo,
    fails,
    fails_twice,
    inline_square,
    naps,
    parts,
    process_square,
    single,
    sleeps,
    thread_square,
)

WAIT = 30.0  # seconds a real backend may take to report a call (never reached when it works)

# ---------------------------------------------------------------------------------------------
# The suite


class BackendContract:
    """The tests every backend passes; subclass it and define :meth:`make_backend`.

    See the module docstring. A subclass's name must start with ``Test`` for pytest to collect
    it; this class's own name does not, so it is never run on its own.
    """

    #: The executors whose components the backend runs (a backend that runs every call in one
    #: kind of worker still runs components declared for another: Ray does).
    executors: ClassVar[tuple[str, ...]] = ("inline", "thread", "process", "async")
    #: Whether a worker can die under a call (False: the backend has none to lose).
    workers_can_die: ClassVar[bool] = True

    # -- the hooks ----------------------------------------------------------------------------

    def make_backend(self) -> Backend:
        """A new backend under test; it is closed after each test."""
        raise NotImplementedError("define make_backend() in your BackendContract subclass")

    def make_clock(self, backend: Backend) -> Clock | None:
        """The clock of the engine over ``backend`` (None: real time)."""
        return None

    def settle(self, backend: Backend, until: Callable[[], bool], timeout: float = WAIT) -> None:
        """Let the backend work until ``until()`` holds: wait in real time, at most
        ``timeout`` seconds. A backend with its own clock moves that clock instead."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"the backend did not report within {timeout} s"
            time.sleep(0.005)

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        """A fresh backend from :meth:`make_backend`, closed after the test."""
        made = self.make_backend()
        try:
            yield made
        finally:
            made.close()

    @pytest.fixture
    def engine(self, backend: Backend) -> Iterator[Engine]:
        """An engine over the test's backend (and its clock, from :meth:`make_clock`)."""
        with Engine(backend, clock=self.make_clock(backend)) as made:
            yield made

    @pytest.fixture
    def failures(self, engine: Engine) -> list[NodeFailed]:
        """Every NodeFailed event of the engine's runs."""
        seen: list[NodeFailed] = []

        def record(event: Event) -> None:
            if isinstance(event, NodeFailed):
                seen.append(event)

        engine.bus.subscribe(record)
        return seen

    # -- the protocol, by hand ----------------------------------------------------------------

    def test_capacity_is_given_by_legatos_resource_names(self, backend: Backend) -> None:
        """``capacity()`` names ``cpus``, ``gpus`` and ``memory`` (legato's names, not the
        backend's), none negative, and lists no more GPUs than it counts."""
        capacity = backend.capacity()
        for name in ("cpus", "gpus", "memory"):
            assert name in capacity, f"capacity() lacks '{name}': {dict(capacity)}"
        assert all(float(amount) >= 0 for amount in capacity.values())
        assert len(backend.gpus()) <= capacity["gpus"]

    def test_submit_reports_the_call_through_done_exactly_once(self, backend: Backend) -> None:
        """Each submitted call is reported once, with what it returned, read where the backend keeps
        its values."""
        reports: list[tuple[Call, Outcome]] = []
        lock = threading.Lock()

        def done(call: Call, outcome: Outcome) -> None:
            with lock:
                reports.append((call, outcome))

        calls = [Call(id=n, target=double, kwargs={"x": n}) for n in range(1, 4)]
        for call in calls:
            backend.submit(call, done)
        self.settle(backend, lambda: len(reports) >= len(calls))
        time.sleep(0.05)  # a second report of any call would come now
        self.settle(backend, lambda: True)
        assert sorted(call.id for call, _ in reports) == [1, 2, 3]
        for call, outcome in reports:
            assert outcome.error is None, outcome.error
            assert _outputs(backend, call, outcome) == {"out": 2 * call.id}
            assert outcome.start <= outcome.end

    def test_a_failing_call_is_reported_with_its_own_error(self, backend: Backend) -> None:
        """A call that raised is reported with the component's own exception (not wrapped: the
        engine wraps it)."""
        reports: list[Outcome] = []
        backend.submit(Call(id=1, target=fails, kwargs={"x": 4}),
                       lambda call, outcome: reports.append(outcome))
        self.settle(backend, lambda: bool(reports))
        error = reports[0].error
        assert isinstance(error, ValueError)
        assert str(error) == "bad input 4"

    def test_cancel_and_close_are_safe_at_any_time(self, backend: Backend) -> None:
        """Cancelling an unknown or a just-submitted call, and closing twice, neither raise nor
        report a call twice."""
        reports: list[Outcome] = []
        call = Call(id=1, target=double, kwargs={"x": 1})
        backend.cancel(Call(id=99, target=double, kwargs={"x": 1}))  # never submitted
        backend.submit(call, lambda c, outcome: reports.append(outcome))
        backend.cancel(call)  # may or may not stop it: done comes at most once
        backend.close()
        backend.close()
        assert len(reports) <= 1

    def test_submit_after_close_is_a_run_error(self, backend: Backend) -> None:
        """A closed backend refuses new calls with a RunError."""
        backend.close()
        with pytest.raises(RunError):
            backend.submit(Call(id=1, target=double, kwargs={"x": 1}), lambda c, o: None)

    # -- pipelines over the backend -----------------------------------------------------------

    @pytest.mark.parametrize("value", [
        None, True, 7, -2.5, "text ü", b"\x00bytes", [1, [2, 3]], {"a": [1, 2], "b": {"c": None}},
        (1, "two"), Sample("s", (0.5, 1.5)),
    ], ids=lambda value: type(value).__name__)
    def test_values_round_trip(self, engine: Engine, value: Any) -> None:
        """A value passes through two calls unchanged, its type kept."""
        @pipeline
        def twice(value: Any) -> Any:
            return echo(echo(value))

        result = twice.run(value=value, engine=engine)
        assert result == value
        assert type(result) is type(value)

    def test_several_named_outputs_reach_the_next_calls(self, engine: Engine) -> None:
        """A component's named outputs each reach the call that takes them."""
        @pipeline
        def both(x: int) -> dict[str, Any]:
            made = parts(x)
            return {"doubled": double(made.total), "label": echo(made.label)}

        assert both.run(x=4, engine=engine) == {"doubled": 10, "label": "n4"}

    def test_many_items_each_get_their_own_result(self, engine: Engine) -> None:
        """Twenty items at once: each gets its own result, in order."""
        chain = single(double)
        assert list(chain.map(range(20), engine=engine)) == [2 * x for x in range(20)]

    def test_a_component_error_is_a_component_error_with_the_original_chained(
        self, engine: Engine
    ) -> None:
        """The run fails with a ComponentError naming the node, the original as its cause."""
        with pytest.raises(ComponentError) as raised:
            single(fails).run(x=3, engine=engine)
        assert raised.value.node == "fails"
        assert "ValueError: bad input 3" in str(raised.value)
        assert isinstance(raised.value.__cause__, ValueError)

    def test_a_failed_call_is_retried_by_the_policy(
        self, engine: Engine, tmp_path: Path, failures: list[NodeFailed]
    ) -> None:
        """A failed call is tried again as its retry policy says, and its success is the result."""
        counter = tmp_path / "attempts"

        @pipeline
        def retried(counter: str) -> int:
            return fails_twice(counter)

        assert retried.run(counter=str(counter), engine=engine) == 7
        assert counter.read_text() == "3"
        assert [f.will_retry for f in failures] == [True, True]

    def test_a_call_past_its_timeout_is_a_component_timeout(self, engine: Engine) -> None:
        """A call past its ``timeout`` fails its item with ComponentTimeout; the backend goes on."""
        @pipeline
        def slow(seconds: float) -> float:
            return naps(seconds)

        with pytest.raises(ComponentTimeout, match=r"timeout=0\.5s"):
            slow.run(seconds=5.0, engine=engine)
        assert slow.run(seconds=0.0, engine=engine) == 0.0  # the backend still serves

    def test_an_item_past_its_deadline_is_deadline_exceeded_and_the_backend_goes_on(
        self, engine: Engine
    ) -> None:
        """An item past its ``deadline`` fails with DeadlineExceeded; its call is cancelled and the
        backend serves on."""
        @pipeline
        def slow(seconds: float) -> float:
            return sleeps(seconds)

        with pytest.raises(DeadlineExceeded):
            slow.run(seconds=30.0, deadline=0.5, engine=engine)
        assert single(double).run(x=3, engine=engine) == 6  # its call was cancelled

    @pytest.mark.parametrize("executor", ["inline", "thread", "process", "async"])
    def test_components_of_each_executor_run(self, engine: Engine, executor: str) -> None:
        """A component declared for each executor the backend supports runs and gives its result."""
        if executor not in self.executors:
            pytest.skip(f"this backend does not run {executor} components")
        square = {"inline": inline_square, "thread": thread_square,
                  "process": process_square, "async": async_square}[executor]
        assert square.options.executor == executor
        assert list(single(square).map([1, 2, 3], engine=engine)) == [1, 4, 9]

    def test_a_batched_component_gets_several_items_per_call(self, engine: Engine) -> None:
        """A batched component's calls take several items at once, each item its own result."""
        results = list(single(batched).map(range(8), engine=engine))
        assert [doubled for doubled, _ in results] == [2 * x for x in range(8)]
        sizes = [size for _, size in results]
        assert all(1 <= size <= 4 for size in sizes)
        assert max(sizes) > 1, f"every call held one item: {sizes}"

    @pytest.mark.parametrize("executor", ["thread", "process"])
    def test_a_class_component_is_built_once_per_slot_and_kept_warm(
        self, engine: Engine, executor: str
    ) -> None:
        """One object per slot serves every call there, this run's and the next's."""
        if executor not in self.executors:
            pytest.skip(f"this backend does not run {executor} components")
        counter = {"thread": Counter, "process": ProcessCounter}[executor]
        results = list(single(counter(offset=100)).map(range(6), engine=engine))
        assert [value for *_, value in results] == [100 + x for x in range(6)]
        assert len({token for token, *_ in results}) == 1  # instances=1: one object
        assert sorted(calls for _, calls, _ in results) == [1, 2, 3, 4, 5, 6]
        again = single(counter(offset=100)).run(x=0, engine=engine)
        assert again[0] == results[0][0]  # the next run is served by the same warm object
        assert again[1] == 7

    def test_a_worker_that_dies_is_worker_died_and_retried(
        self, engine: Engine, tmp_path: Path, failures: list[NodeFailed]
    ) -> None:
        """A worker dying under a call is reported as WorkerDied, which the retry policy retries."""
        if not self.workers_can_die:
            pytest.skip("this backend has no worker to lose")
        marker = tmp_path / "died"

        @pipeline
        def once(marker: str) -> str:
            return dies_once(marker)

        assert once.run(marker=str(marker), engine=engine) == "back"
        assert marker.exists()
        assert len(failures) == 1
        assert isinstance(failures[0].exception, WorkerDied), failures[0].error
        assert failures[0].will_retry

    def test_a_worker_that_always_dies_fails_the_item_caused_by_worker_died(
        self, engine: Engine
    ) -> None:
        """A call whose worker always dies fails its item, caused by WorkerDied; the backend serves
        on."""
        if not self.workers_can_die:
            pytest.skip("this backend has no worker to lose")
        with pytest.raises(ComponentError) as raised:
            single(dies).run(x=1, engine=engine)
        assert isinstance(raised.value.__cause__, WorkerDied)
        assert single(double).run(x=2, engine=engine) == 4  # the backend still serves


def _outputs(backend: Backend, call: Call, outcome: Outcome) -> dict[str, Any]:
    """What a call returned, by port, wherever the backend keeps its values."""
    if outcome.outputs is not None:
        item = outcome.outputs[0]
        assert not isinstance(item, Exception), item
        return dict(values_of(backend).fetch(item))
    split = split_value(call.component, outcome.value)
    assert not isinstance(split, Exception), split
    return split


__all__ = ["WAIT", "BackendContract"]
