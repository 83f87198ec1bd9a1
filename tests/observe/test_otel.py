"""OpenTelemetry traces from the engine's events: real runs on a real engine, spans collected
by the SDK's in-memory exporter on a tracer provider of the test's own (the global one is never
set in this process); a real server on 127.0.0.1 for the W3C trace headers; the ``--otel``
command in a subprocess exporting OTLP to a local HTTP server that records what it is sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

import legato as lg
from legato.observe.otel import Tracing

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Traced:
    """A Tracing attached to an engine, spans kept in memory."""

    def __init__(self, engine: lg.Engine) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = Tracing(provider)
        self.detach = self.tracing.attach(engine)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [span.name for span in self.spans()]
        return found[0]


@pytest.fixture
def traced(engine: lg.Engine) -> Iterator[Traced]:
    traced = Traced(engine)
    yield traced
    traced.detach()


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


# -- structure ---------------------------------------------------------------------------------


@lg.component(executor="inline")
def embed(x: int) -> int:
    return x + 1


@lg.component(executor="inline")
def score(y: int) -> int:
    return y * 2


@lg.pipeline
def two_steps(x: int) -> int:
    return score(embed(x))


def test_a_run_is_a_trace_of_run_item_and_node_spans(engine: lg.Engine,
                                                     traced: Traced) -> None:
    assert two_steps.run({"x": 1}, engine=engine) == 4
    assert traced.tracing.wait_idle(10)

    run = traced.one("legato.run two_steps")
    item = traced.one("legato.item two_steps")
    nodes = {span.name: span for span in traced.named("embed") + traced.named("score")}
    assert parent_of(run) is None
    assert parent_of(item) == run.context.span_id
    assert {parent_of(span) for span in nodes.values()} == {item.context.span_id}
    assert len({span.context.trace_id for span in traced.spans()}) == 1
    assert run.attributes is not None
    assert item.attributes is not None
    assert run.attributes["legato.pipeline"] == "two_steps"
    assert run.attributes["legato.mode"] == "run"
    assert run.attributes["legato.run.status"] == "ok"
    assert item.attributes["legato.run.id"] == run.attributes["legato.run.id"]
    assert item.attributes["legato.item"] == 0
    attributes = dict(nodes["score"].attributes or {})
    assert attributes == {"legato.node": "score", "legato.component": "score",
                          "legato.attempt": 1, "legato.batch.size": 1,
                          "legato.cache.hit": False, "legato.executor": "inline",
                          "legato.worker": attributes["legato.worker"]}
    for span in (item, *nodes.values()):  # each inside its parent, in epoch nanoseconds
        assert span.start_time is not None
        assert span.end_time is not None
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time
    assert nodes["embed"].end_time <= nodes["score"].start_time
    assert traced.tracing.open_spans() == 0


def test_a_failed_run_and_item_have_error_status(engine: lg.Engine, traced: Traced) -> None:
    @lg.component(executor="inline")
    def broken(x: int) -> int:
        raise ValueError("no good")

    @lg.pipeline
    def failing(x: int) -> int:
        return broken(x)

    with pytest.raises(lg.ComponentError):
        failing.run({"x": 1}, engine=engine)
    assert traced.tracing.wait_idle(10)
    node = traced.one("broken")
    assert node.status.status_code is StatusCode.ERROR
    assert "no good" in (node.status.description or "")
    assert [event.name for event in node.events] == ["exception"]
    assert node.events[0].attributes is not None
    assert node.events[0].attributes["exception.type"] == "ValueError"
    item = traced.one("legato.item failing")
    assert item.status.status_code is StatusCode.ERROR
    assert traced.one("legato.run failing").attributes["legato.run.status"] == "failed"


def test_a_retried_node_gives_a_span_per_attempt(engine: lg.Engine, traced: Traced) -> None:
    calls = []

    @lg.component(executor="inline", retries=lg.Retry(attempts=2))
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("try again")
        return x

    @lg.pipeline
    def once_more(x: int) -> int:
        return flaky(x)

    assert once_more.run({"x": 5}, engine=engine) == 5
    assert traced.tracing.wait_idle(10)
    first, second = sorted(traced.named("flaky"),
                           key=lambda span: span.attributes["legato.attempt"])
    assert (first.attributes or {})["legato.attempt"] == 1
    assert (second.attributes or {})["legato.attempt"] == 2
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["legato.retried"] is True
    assert second.status.status_code is StatusCode.UNSET
    assert parent_of(first) == parent_of(second) == traced.one(
        "legato.item once_more").context.span_id
    assert first.end_time <= second.start_time


def test_a_cache_hit_is_a_zero_length_span(engine: lg.Engine, traced: Traced,
                                           tmp_path: Path) -> None:
    computed = []

    @lg.component(executor="inline", cache=True)
    def costly(x: int) -> int:
        computed.append(x)
        return x * 10

    @lg.pipeline
    def cached(x: int) -> int:
        return costly(x)

    store = str(tmp_path / "runs.db")
    assert cached.run({"x": 3}, engine=engine, store=store) == 30
    assert cached.run({"x": 3}, engine=engine, store=store) == 30
    assert computed == [3]
    assert traced.tracing.wait_idle(10)
    ran, hit = sorted(traced.named("costly"),
                      key=lambda span: span.attributes["legato.cache.hit"])
    assert (ran.attributes or {})["legato.cache.hit"] is False
    assert (hit.attributes or {})["legato.cache.hit"] is True
    assert (hit.attributes or {})["legato.cache.source"] == "cache"
    assert hit.start_time == hit.end_time
    runs = traced.named("legato.run cached")
    assert len(runs) == 2
    assert hit.context.trace_id == runs[1].context.trace_id != \
        runs[0].context.trace_id


def test_a_batch_span_links_to_each_member_node_span(engine: lg.Engine,
                                                     traced: Traced) -> None:
    @lg.component(batch=lg.Batch(max_size=4, max_wait_ms=60_000))
    def double(xs: list[int]) -> list[int]:
        return [x * 2 for x in xs]

    @lg.pipeline
    def batched(x: int) -> int:
        return double(x)

    run = batched.open(engine=engine)
    handles = run.submit_many([{"x": x} for x in range(4)])  # one message: one full batch
    run.close()
    assert [handle.result(timeout=30) for handle in handles] == [0, 2, 4, 6]
    assert traced.tracing.wait_idle(10)

    batch = traced.one("legato.batch double")
    members = traced.named("double")
    assert len(members) == 4
    assert {(span.attributes or {})["legato.batch.size"] for span in members} == {4}
    assert {(link.context.trace_id, link.context.span_id) for link in batch.links} == {
        (span.context.trace_id, span.context.span_id) for span in members}
    assert (batch.attributes or {})["legato.batch.size"] == 4
    assert (batch.attributes or {})["legato.batch.reason"] == "full"
    assert parent_of(batch) == traced.one("legato.run batched").context.span_id
    assert batch.end_time == members[0].end_time


def test_tracing_never_fails_a_run_and_logs_its_failure_once(
        engine: lg.Engine, caplog: pytest.LogCaptureFixture) -> None:
    class Raising:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("exporter on fire")

    class RaisingProvider(TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            return Raising()

    detach = Tracing(RaisingProvider()).attach(engine, wait=0)
    try:
        assert two_steps.run({"x": 1}, engine=engine) == 4
        assert two_steps.run({"x": 2}, engine=engine) == 6
    finally:
        detach()
    logged = [record for record in caplog.records if record.name == "legato.otel"]
    assert len(logged) == 1
    assert "RunStarted" in logged[0].getMessage()


# -- served requests -----------------------------------------------------------------------------


@pytest.fixture
def server(engine: lg.Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from legato.serve import app, running

    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    api = app(two_steps, engine=engine, drain_timeout=10)
    with running(api) as url:
        assert api.state.service.wait_ready(30), api.state.service.error
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def test_a_served_request_with_a_traceparent_is_a_child_of_the_remote_span(
        traced: Traced, server: Any) -> None:
    answer = server.post("/v1/pipelines/two_steps", json={"x": 2}, headers={
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=abc"})
    assert answer.status_code == 200, answer.text
    item = traced.one("legato.item two_steps")
    assert f"{item.context.trace_id:032x}" == TRACE_ID
    assert item.parent is not None
    assert item.parent.is_remote
    assert f"{item.parent.span_id:016x}" == PARENT_ID
    assert item.context.trace_state.get("vendor") == "abc"
    (link,) = item.links  # to the run's span: open while the service runs, in a trace of its own
    assert f"{link.context.trace_id:032x}" != TRACE_ID
    assert {parent_of(span) for span in traced.named("embed") + traced.named("score")} == {
        item.context.span_id}


def test_a_streamed_request_passes_its_traceparent_too(traced: Traced, server: Any) -> None:
    with server.stream("POST", "/v1/pipelines/two_steps/stream", json={"x": 2},
                       headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}) as answer:
        assert answer.status_code == 200
        assert "event: result" in answer.read().decode()
    item = traced.one("legato.item two_steps")
    assert f"{item.context.trace_id:032x}" == TRACE_ID
    assert item.parent is not None
    assert f"{item.parent.span_id:016x}" == PARENT_ID


@pytest.mark.parametrize("header", [
    "garbage",
    f"00-{TRACE_ID}-{PARENT_ID}",  # no flags
    f"00-{'0' * 32}-{PARENT_ID}-01",  # an all-zero trace id is invalid
    f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper-case hex is not W3C
    f"00-{TRACE_ID}-{PARENT_ID}-01" + "x" * 600,
])
def test_a_malformed_traceparent_is_ignored_and_the_request_succeeds(
        traced: Traced, server: Any, header: str) -> None:
    answer = server.post("/v1/pipelines/two_steps", json={"x": 2},
                         headers={"traceparent": header, "tracestate": "=,=;not w3c"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"out": 6}
    item = traced.one("legato.item two_steps")
    assert f"{item.context.trace_id:032x}" != TRACE_ID
    assert item.parent is None or not item.parent.is_remote


def test_a_served_request_without_a_traceparent_is_a_trace_of_its_own(
        traced: Traced, server: Any) -> None:
    assert server.post("/v1/pipelines/two_steps", json={"x": 2}).status_code == 200
    first = traced.one("legato.item two_steps")
    assert server.post("/v1/pipelines/two_steps", json={"x": 3}).status_code == 200
    second = next(span for span in traced.named("legato.item two_steps") if span is not first)
    assert first.parent is None
    assert second.parent is None
    assert first.context.trace_id != second.context.trace_id
    (link,) = first.links  # to the service's run span
    assert [link.context.span_id for link in second.links] == [link.context.span_id]


def test_an_application_tracer_provider_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text(PIPELINE)
    code = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
from legato.loader import load
from legato.observe import otel
assert otel.configure() is provider
stop = otel.enable()
print(load("loud.py:loud").run({"text": "hi"}))
stop()
print(sorted(span.name for span in exporter.get_finished_spans()))
"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEGATO_OTEL"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=clean, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "HI", str(["legato.item loud", "legato.run loud", "shout"])]


def test_legato_otel_traces_a_python_program_and_enabling_twice_changes_nothing(
        tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text(PIPELINE)
    code = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
from legato.engines import default_engine
from legato.loader import load
from legato.observe import otel
engine = default_engine()  # LEGATO_OTEL=1: traced as it is made
stop = otel.enable(engine)
assert otel.enable(engine) is stop
print(load("loud.py:loud").run({"text": "hi"}))
stop()
print(sorted(span.name for span in exporter.get_finished_spans()))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEGATO_OTEL"))}
    env["LEGATO_OTEL"] = "1"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "HI", str(["legato.item loud", "legato.run loud", "shout"])]


GATE = threading.Event()


@lg.component
def gated(x: int) -> int:
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return x


@lg.pipeline
def waits(x: int) -> int:
    return gated(x)


def test_a_cancelled_item_ends_its_span(engine: lg.Engine, traced: Traced) -> None:
    GATE.clear()
    run = waits.open(engine=engine)
    try:
        handle = run.submit({"x": 1})
        handle.cancel()
        with pytest.raises(lg.RunCancelled):
            handle.result(30)
    finally:
        GATE.set()
        run.close()
        assert run.wait(30)
    assert traced.tracing.wait_idle(10)
    item = traced.one("legato.item waits")
    assert (item.attributes or {}).get("legato.item.cancelled") is True
    assert traced.tracing.open_spans() == 0


# -- configuration -------------------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP endpoint on 127.0.0.1 that records each request: path and body."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[tuple[str, bytes]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((self.path, body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[dict[str, Any]]:
        """Every span received at /v1/traces: its service (the resource's service.name), name,
        attributes, trace id, span id and parent span id (hex; "" for none)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for path, body in self.received:
            assert path == "/v1/traces"
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: json.loads(_value(a.value))
                                      for a in span.attributes}
                        found.append({"service": service["service.name"], "name": span.name,
                                      "attributes": attributes,
                                      "trace_id": span.trace_id.hex(),
                                      "span_id": span.span_id.hex(),
                                      "parent": span.parent_span_id.hex()})
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> str:
    kind = value.WhichOneof("value")
    return json.dumps(getattr(value, kind))


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.close()


PIPELINE = """
import legato as lg

@lg.component(executor="inline")
def shout(text: str) -> str:
    return text.upper()

@lg.pipeline
def loud(text: str) -> str:
    return shout(text)
"""


def legato(args: list[str], env: dict[str, str], cwd: Path,
           prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``legato ARGS`` in a subprocess (``prelude``: Python run before the command line)."""
    code = f"{prelude}\nimport sys\nfrom legato.cli import main\nsys.argv = ['legato', " \
           f"*{args!r}]\nmain()"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEGATO_OTEL"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env={**clean, **env}, timeout=120, check=False, stdin=None)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_otel_on_the_command_line_exports_over_otlp_as_the_environment_says(
        collector: Collector, tmp_path: Path, how: str) -> None:
    (tmp_path / "loud.py").write_text(PIPELINE)
    (tmp_path / "items.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "voices",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"}
    if how == "flag":
        done = legato(["run", "loud.py:loud", "--input", "text=hi", "--otel"], env, tmp_path)
        items = 1
    else:
        env["LEGATO_OTEL"] = "1"
        done = legato(["map", "loud.py:loud", "items.jsonl", "--no-store"], env, tmp_path)
        items = 2
    assert done.returncode == 0, done.stderr
    spans = collector.spans()
    assert {span["service"] for span in spans} == {"voices"}
    names = sorted(span["name"] for span in spans)
    assert names == sorted(["legato.run loud", *["legato.item loud"] * items,
                            *["shout"] * items])
    run = next(span["attributes"] for span in spans if span["name"] == "legato.run loud")
    assert run["legato.mode"] == ("run" if how == "flag" else "map")


@pytest.mark.timeout(120)
def test_serve_otel_continues_the_callers_trace_and_exports_at_shutdown(
        collector: Collector, tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    (tmp_path / "loud.py").write_text(PIPELINE)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEGATO_"))},
           "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
    process = subprocess.Popen([sys.executable, "-m", "legato.cli", "serve", "loud.py:loud",
                                "--port", "0", "--otel"], stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    try:
        assert process.stderr is not None
        url = None
        for _ in range(50):  # a few lines at most before it says where it listens
            line = process.stderr.readline()
            if " at http://" in line:
                url = line.split(" at ", 1)[1].split()[0]
                break
        assert url is not None, "the server did not start"
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(300):
                if client.get("/readyz").status_code == 200:
                    break
                threading.Event().wait(0.1)
            answer = client.post("/v1/pipelines/loud", json={"text": "hi"},
                                 headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
            assert answer.status_code == 200, answer.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    received = collector.spans()
    spans = {span["name"]: span for span in received}
    assert {"legato.run loud", "legato.item loud", "shout"} <= set(spans)
    assert spans["legato.run loud"]["attributes"]["legato.mode"] == "serve"
    assert spans["legato.run loud"]["trace_id"] != TRACE_ID
    item = spans["legato.item loud"]
    assert item["trace_id"] == spans["shout"]["trace_id"] == TRACE_ID
    assert spans["shout"]["parent"] == item["span_id"]
    # the item descends from the caller's span: directly, or through the server's own spans
    # for the request when FastAPI instruments itself (recent versions do, OpenTelemetry given)
    by_id = {span["span_id"]: span for span in received}
    ancestors = [item["parent"]]
    while ancestors[-1] in by_id:
        ancestors.append(by_id[ancestors[-1]]["parent"])
    assert ancestors[-1] == PARENT_ID
    assert all(by_id[span]["name"] != "GET /readyz" for span in ancestors[:-1])


def test_otel_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text(PIPELINE)
    done = legato(["run", "loud.py:loud", "--input", "text=hi", "--otel"], {}, tmp_path,
                  prelude="import sys; sys.modules['opentelemetry'] = None")
    assert done.returncode == 1
    assert "pip install 'legato[otel]'" in done.stderr
    assert done.stdout == ""


def test_an_unknown_exporter_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text(PIPELINE)
    done = legato(["run", "loud.py:loud", "--input", "text=hi", "--otel"],
                  {"OTEL_TRACES_EXPORTER": "zipkin"}, tmp_path)
    assert done.returncode == 1
    assert "OTEL_TRACES_EXPORTER" in done.stderr
    assert "'zipkin'" in done.stderr


def test_importing_legato_imports_no_opentelemetry() -> None:
    code = ("import sys, legato, legato.observe.otel, legato.cli.options; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
