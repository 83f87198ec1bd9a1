"""Components: options validated where declared, ports from type hints, named outputs, plain
callables outside a pipeline, and class components built once per instance slot."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict

import pytest

import legato as lg
from legato.options import Options, parse_bytes

# -- options ---------------------------------------------------------------------------------


def _plain(x: int) -> int:
    return x


async def _coroutine(x: int) -> int:
    return x


BAD_OPTIONS: list[tuple[Callable[[], Any], str]] = [
    (lambda: lg.Batch(max_size=0), "Batch.max_size must be >= 1, got 0"),
    (lambda: lg.Batch(max_size=2.5), "Batch.max_size must be an int >= 1, got 2.5"),
    (lambda: lg.Batch(max_wait_ms=-1), "Batch.max_wait_ms must be >= 0, got -1"),
    (lambda: lg.component(instances=0)(_plain), "instances must be >= 1, got 0"),
    (lambda: lg.component(instances=True)(_plain), "instances must be an int >= 1, got True"),
    (lambda: lg.component(executor="gpu")(_plain),
     "executor must be one of inline, thread, process, async; got 'gpu'"),
    (lambda: lg.component(executor="async")(_plain),
     "executor='async' needs an 'async def', use 'thread' for a plain function"),
    (lambda: lg.component(memory="lots")(_plain),
     "memory must be a size like 512MiB, 6GiB or 2GB, or a number of bytes; got 'lots'"),
    (lambda: lg.component(memory=-5)(_plain), "memory must be >= 0, got -5"),
    (lambda: lg.component(retries=-1)(_plain),
     "retries must be >= 0 (retries after the first try), got -1"),
    (lambda: lg.component(retries="twice")(_plain),
     "retries must be a Retry(...) or a number of retries, got 'twice'"),
    (lambda: lg.Retry(attempts=0), "Retry.attempts must be >= 1, got 0"),
    (lambda: lg.Retry(backoff=-1.0), "Retry.backoff must be >= 0, got -1.0"),
    (lambda: lg.component(timeout=0)(_plain), "timeout must be > 0, got 0"),
    (lambda: lg.component(timeout="soon")(_plain), "timeout must be a number, got 'soon'"),
    (lambda: lg.component(cpus=-1)(_plain), "cpus must be >= 0, got -1"),
    (lambda: lg.component(gpus=1.5)(_plain), "gpus above 1 must be a whole number, got 1.5"),
    (lambda: lg.component(resources={"asr": -1})(_plain), "resources['asr'] must be >= 0, got -1"),
    (lambda: lg.component(resources={"gpus": 1})(_plain),
     "resources: pass gpus as its own option, not in resources="),
    (lambda: lg.component(resources=["asr"])(_plain),
     "resources must be a mapping like {'asr': 1}, got ['asr']"),
    (lambda: lg.component(batch=8)(_plain),
     "batch must be a Batch(max_size=..., max_wait_ms=...), got 8"),
    (lambda: lg.component(42), "@component decorates a function or a class, got 42"),
]


@pytest.mark.parametrize(("declare", "message"), BAD_OPTIONS, ids=[m for _, m in BAD_OPTIONS])
def test_bad_options_raise_config_error_where_declared(
    declare: Callable[[], Any], message: str
) -> None:
    with pytest.raises(lg.ConfigError) as info:
        declare()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # ConfigError is also a ValueError


def test_var_args_cannot_be_ports() -> None:
    def spread(*xs: int) -> int:
        return sum(xs)

    with pytest.raises(lg.ConfigError, match=r"\*xs parameters cannot be ports"):
        lg.component(spread)


@pytest.mark.parametrize(("text", "size"), [("400MiB", 400 * 2**20), ("2GB", 2 * 10**9),
                                            ("1.5 GiB", int(1.5 * 2**30)), (2e9, 2 * 10**9),
                                            ("512", 512), (0, 0)])
def test_memory_sizes_parse(text: Any, size: int) -> None:
    assert parse_bytes(text) == size


def test_options_are_recorded_as_declared() -> None:
    @lg.component(cpus=0.5, gpus=1, memory="1GiB", resources={"asr": 2}, instances=3,
                  batch=lg.Batch(max_size=8, max_wait_ms=2), retries=2, timeout=1.5,
                  version="v2", executor="process")
    def model(xs: list[int]) -> list[int]:
        return xs

    options = model.options
    assert options.resources.as_dict() == {"cpus": 0.5, "gpus": 1, "memory": 2**30, "asr": 2}
    assert options.instances == 3
    assert options.batch == lg.Batch(max_size=8, max_wait_ms=2)
    assert options.retry.attempts == 3
    assert options.timeout == 1.5
    assert options.executor == "process"


def test_default_executor_is_async_for_async_def_and_thread_otherwise() -> None:
    assert lg.component(_plain).options.executor == "thread"
    assert lg.component(_coroutine).options.executor == "async"
    assert Options().executor == "thread"


def test_with_options_gives_a_changed_copy() -> None:
    base = lg.component(_plain)
    wider = base.with_options(instances=4, retries=1)
    assert (wider.options.instances, wider.options.retry.attempts) == (4, 2)
    assert (base.options.instances, base.options.retry.attempts) == (1, 1)
    with pytest.raises(lg.ConfigError, match="instances must be >= 1"):
        base.with_options(instances=-2)


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = lg.Retry(attempts=5, backoff=1.0, multiplier=3.0, max_backoff=5.0)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
    assert lg.Retry(on=(KeyError,)).retries(KeyError()) is True
    assert lg.Retry(on=(KeyError,)).retries(ValueError()) is False


def test_fingerprint_changes_with_version_only() -> None:
    a = lg.component(version="1")(_plain)
    b = lg.component(version="1")(_plain)
    c = lg.component(version="2")(_plain)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# -- ports ----------------------------------------------------------------------------------


class Sentiment(NamedTuple):
    label: str
    score: float


@dataclasses.dataclass
class Box:
    width: int
    height: int = 1


class Meta(TypedDict):
    lang: str
    words: int


def test_input_ports_come_from_parameters_with_types_and_defaults() -> None:
    @lg.component
    def f(text: str, k: int = 3, extra=None) -> list[str]:  # extra: unannotated on purpose
        return [text] * k

    assert [(p.name, p.annotation, p.required) for p in f.inputs] == [
        ("text", str, True), ("k", int, False), ("extra", Any, False)]
    assert f.inputs[1].default == 3
    assert [(p.name, p.annotation) for p in f.outputs] == [("out", list[str])]
    assert str(f.inputs[0]) == "text: str"


@pytest.mark.parametrize(("returned", "ports"), [
    (Sentiment, [("label", str), ("score", float)]),
    (Box, [("width", int), ("height", int)]),
    (Meta, [("lang", str), ("words", int)]),
    (tuple[str, float], [("out", tuple[str, float])]),
])
def test_named_outputs_come_from_namedtuple_dataclass_and_typeddict_returns(
    returned: Any, ports: list[tuple[str, Any]]
) -> None:
    def f(x: int) -> Any:
        return x

    f.__annotations__ = {"x": int, "return": returned}
    component = lg.component(f)
    assert [(p.name, p.annotation) for p in component.outputs] == ports


def test_a_class_component_takes_its_ports_from_call_and_its_name_in_snake_case() -> None:
    @lg.component
    class TextEmbedder:
        def __init__(self, model: str = "small") -> None:
            self.model = model

        def __call__(self, text: str) -> list[float]:
            return [float(len(text))]

    assert TextEmbedder.name == "text_embedder"
    assert TextEmbedder.is_class
    assert [p.name for p in TextEmbedder.inputs] == ["text"]
    assert TextEmbedder.outputs[0].annotation == list[float]


def test_a_batched_component_has_per_item_ports() -> None:
    @lg.component(batch=lg.Batch(max_size=4))
    def embed(texts: list[str]) -> list[Sentiment]:
        return []

    assert [(p.name, p.annotation) for p in embed.inputs] == [("texts", str)]
    assert [p.name for p in embed.outputs] == ["label", "score"]
    assert embed.signature_problems() == []


def test_name_can_be_given() -> None:
    assert lg.component(name="renamed")(_plain).name == "renamed"


def test_a_component_records_where_it_was_defined() -> None:
    component = lg.component(_plain)
    line = inspect.getsourcelines(_plain)[1]
    assert component.location is not None
    assert component.location.endswith(f"test_component.py:{line}")


# -- outside a pipeline, a component is an ordinary callable -----------------------------------


def test_a_function_component_is_callable_outside_a_pipeline() -> None:
    @lg.component
    def shout(text: str, times: int = 1) -> str:
        return text.upper() * times

    assert shout("hi") == "HI"
    assert shout("hi", times=2) == "HIHI"
    assert shout.__doc__ is None
    assert shout.__wrapped__.__name__ == "shout"


def test_an_async_component_is_awaitable_outside_a_pipeline() -> None:
    @lg.component
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    assert asyncio.run(later(1)) == 2


def test_a_class_component_builds_once_when_its_instance_is_called_directly() -> None:
    built: list[str] = []

    @lg.component
    class Greeter:
        def __init__(self, greeting: str) -> None:
            built.append(greeting)
            self.greeting = greeting

        def __call__(self, name: str) -> str:
            return f"{self.greeting}, {name}"

    instance = Greeter("hello")
    assert built == []  # nothing is built until first use
    assert [instance(n) for n in ("ann", "bob", "cy")] == ["hello, ann", "hello, bob", "hello, cy"]
    assert built == ["hello"]
    assert Greeter(greeting="hey")("dee") == "hey, dee"
    assert built == ["hello", "hey"]


def test_a_class_component_rejects_constructor_arguments_that_do_not_fit() -> None:
    @lg.component
    class Model:
        def __init__(self, size: int) -> None:
            self.size = size

        def __call__(self, x: int) -> int:
            return x

    with pytest.raises(lg.ConfigError) as info:
        Model(colour="red")
    assert "component 'model' (" in str(info.value)
    assert "test_component.py:" in str(info.value)
    assert "constructor arguments do not fit Model(size" in str(info.value)


# -- instance slots in runs ------------------------------------------------------------------


def test_class_init_runs_once_across_calls_and_runs(engine: lg.Engine) -> None:
    builds: list[int] = []

    @lg.component
    class Counter:
        def __init__(self) -> None:
            builds.append(1)
            self.calls = 0

        def __call__(self, x: int) -> int:
            self.calls += 1
            return self.calls

    @lg.pipeline
    def p(x: int) -> int:
        return Counter()(x)

    assert p.run(x=1, engine=engine) == 1
    assert p.run(x=1, engine=engine) == 2  # the same warm object served the second run
    assert list(p.map(range(5), engine=engine)) == [3, 4, 5, 6, 7]
    assert builds == [1]


def test_two_instance_slots_build_at_most_two_objects(engine: lg.Engine) -> None:
    builds: list[int] = []
    both_busy = threading.Barrier(2, timeout=10)
    lock = threading.Lock()

    @lg.component(instances=2)
    class Paired:
        def __init__(self) -> None:
            with lock:
                builds.append(threading.get_ident())

        def __call__(self, x: int, meet: bool) -> int:
            if meet:
                both_busy.wait()  # breaks (and fails the run) unless 2 slots serve at once
            return x

    @lg.pipeline
    def p(x: int, meet: bool) -> int:
        return Paired()(x, meet)

    first = list(p.map([{"x": 0, "meet": True}, {"x": 1, "meet": True}], engine=engine))
    assert first == [0, 1]
    assert len(builds) == 2
    rest = list(p.map([{"x": i, "meet": False} for i in range(30)], engine=engine, window=8))
    assert rest == list(range(30))
    assert p.run(x=5, meet=False, engine=engine) == 5
    assert len(builds) == 2


def test_instances_with_different_constructor_arguments_are_built_apart(
    engine: lg.Engine,
) -> None:
    built: list[int] = []

    @lg.component
    class Scale:
        def __init__(self, k: int) -> None:
            built.append(k)
            self.k = k

        def __call__(self, x: int) -> int:
            return self.k * x

    @lg.pipeline
    def p(x: int) -> int:
        return Scale(10)(Scale(2)(x))

    assert list(p.map([1, 2, 3], engine=engine)) == [20, 40, 60]
    assert sorted(built) == [2, 10]
