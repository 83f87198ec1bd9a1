"""The endpoints: ``POST /v1/pipelines/{name}`` per pipeline, ``GET /v1/pipelines``, and the
probes ``/healthz``, ``/readyz``, ``/metrics``.

A request's way through ``POST /v1/pipelines/{name}``:

1. refused with 503 unless the service is ready (starting, or draining after SIGTERM);
2. its deadline (``X-Request-Timeout`` or ``?timeout=``, capped by ``max_timeout``) and
   priority (the ``priority_header``) read, 422 when they are not numbers;
3. its body validated against the pipeline's request model (JSON, or multipart with files
   for file ports): 422 naming each bad field;
4. admitted by the pipeline's gate, or refused with 429 and ``Retry-After``;
5. submitted as an item of the pipeline's run, with its W3C trace context (the
   ``traceparent`` and ``tracestate`` headers, when well formed: traces make the request's
   span their parent; a malformed one is ignored, never refused); while it runs, a client
   that disconnects cancels it;
6. answered with the outputs, or the problem its error maps to (:mod:`legato.serve.problems`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from legato.engine import Dropped, ItemHandle
from legato.errors import RunError
from legato.observe.metrics import Metrics, metrics_route
from legato.serve.lifecycle import Served, Service
from legato.serve.models import write_temporary
from legato.serve.problems import MEDIA, Problem, documented, failed, invalid, problem

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]

# W3C Trace Context: version-traceid-parentid-flags (a later version may append fields)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[\x21-\x7e]*)?")
_TRACESTATE = re.compile(r"[\x20-\x7e]{0,512}")


def pipeline_routes(service: Service) -> APIRouter:
    """One typed route per served pipeline, and the listing."""
    router = APIRouter(tags=["pipelines"])
    for served in service.served.values():
        inputs = served.ports.inputs.__name__
        content: dict[str, Any] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{inputs}"}}}
        if served.ports.files:
            content["multipart/form-data"] = {
                "schema": {"$ref": f"#/components/schemas/{inputs}Upload"}}
        router.add_api_route(
            f"/v1/pipelines/{served.name}", _endpoint(service, served), methods=["POST"],
            response_model=served.ports.outputs, name=f"run_{served.name}",
            operation_id=f"run_{served.name}",
            summary=f"Run '{served.name}' on one item",
            description=(served.pipeline.fn.__doc__ or "").strip() or None,
            responses=documented(401, 422, 429, 500, 503, 504),
            openapi_extra={"requestBody": {"required": bool(served.ports.fields),
                                           "content": content}})
    router.add_api_route("/v1/pipelines", _listing(service), methods=["GET"],
                         summary="The served pipelines, with their input and output schemas")
    return router


def probe_routes(service: Service, metrics: Metrics) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics`` (``metrics``' registry, with the admission
    gates' numbers added to it)."""
    router = APIRouter(tags=["service"])

    async def healthz() -> dict[str, str]:
        """200 while the process lives."""
        return {"status": "alive"}

    async def readyz() -> Response:
        """200 once every pipeline's run is open (and its models warm); 503 before, and
        while shutting down."""
        if service.state == "ready":
            return JSONResponse({"status": "ready"})
        detail = f"the service is {service.state}"
        if service.error is not None:
            detail += f": it failed to start: {type(service.error).__name__}: {service.error}"
        return problem(503, "Not ready", detail, state=service.state)

    router.add_api_route("/healthz", healthz, methods=["GET"])
    router.add_api_route("/readyz", readyz, methods=["GET"],
                         responses=documented(503))
    metrics.registry.register(_GateNumbers(service))
    router.add_route("/metrics", metrics_route(metrics), methods=["GET"],  # a plain Starlette
                     include_in_schema=False)  # route: the endpoint takes the request as is
    return router


class _GateNumbers:
    """The served pipelines' admission gates, read at scrape time."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        admitted = GaugeMetricFamily("legato_serve_admitted", "requests admitted and not yet "
                                     "answered, by served pipeline", labels=["pipeline"])
        refused = CounterMetricFamily("legato_serve_refused_total", "requests refused with "
                                      "429 (max_queue), by served pipeline", labels=["pipeline"])
        for served in self._service.served.values():
            admitted.add_metric([served.name], served.gate.admitted)
            refused.add_metric([served.name], served.gate.refused)
        yield admitted
        yield refused


def _listing(service: Service) -> Endpoint:
    async def pipelines(request: Request) -> Response:
        listed = []
        for served in service.served.values():
            ports = served.ports
            listed.append({
                "name": served.name, "path": f"/v1/pipelines/{served.name}",
                "inputs": ports.inputs.model_json_schema(by_alias=True),
                "outputs": ports.outputs.model_json_schema(by_alias=True),
                "files": sorted(ports.files)})
        return JSONResponse({"pipelines": listed})

    return pipelines


def _endpoint(service: Service, served: Served) -> Endpoint:
    options = service.options
    counts = service.counts

    async def run_pipeline(request: Request) -> Response:
        response = await _answer(request)
        counts[(served.name, response.status_code)] += 1
        return response

    async def _answer(request: Request) -> Response:
        admitted = await admit(request, service, served)
        if isinstance(admitted, Response):
            return admitted
        completed = False
        try:
            handle = admitted.submit()
            if handle is None:
                return stopping()
            if not await _finished_or_gone(request, handle):
                handle.cancel()
                service.disconnected += 1
                return problem(499, "Client closed request", "the client went away: the "
                               "item was cancelled")
            error = handle.exception()
            if error is not None:
                return failed(error, debug=options.debug)
            result = handle.result()
            completed = True
            if isinstance(result, Dropped):
                return problem(503, "Dropped", f"the item was dropped at node '{result.node}' "
                               f"({result.reason})", node=result.node, reason=result.reason)
            try:
                body = served.ports.answer(result)
            except Exception as exc:
                return problem(500, "Output has no JSON form",
                               f"the result of '{served.name}' cannot be sent as JSON: "
                               f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
            return Response(body, media_type="application/json")
        finally:
            admitted.done(completed=completed)

    return run_pipeline


@dataclass
class Admitted:
    """A request let in: its inputs, deadline and priority, and what it holds (a place in the
    gate, the service's in-flight count, temporary files) until :meth:`done`."""

    service: Service
    served: Served
    inputs: dict[str, Any]
    deadline: float | None
    priority: int | None
    temporary: list[Path]
    context: Mapping[str, str] | None = None  # the W3C trace headers, for traces

    def submit(self, *, updates: bool = False) -> ItemHandle | None:
        """The request as an item of its pipeline's run; None when the run has closed (the
        service is stopping)."""
        try:
            assert self.served.run is not None
            return self.served.run.submit(self.inputs, deadline=self.deadline,
                                          priority=self.priority, updates=updates,
                                          context=self.context)
        except RunError:  # closed while this request was read
            return None

    def done(self, *, completed: bool) -> None:
        self.served.gate.release(completed=completed)
        self.service.leave()
        _remove(self.temporary)


async def admit(request: Request, service: Service, served: Served) -> Admitted | Response:
    """Steps 1-4 of a request's way in (see the module docstring): the request let in, or
    the response that refuses it."""
    options = service.options
    if not service.accepting:
        title = "Starting" if service.state == "starting" else "Shutting down"
        return problem(503, title, f"the service is {service.state}: not taking requests",
                       headers={"Retry-After": "1"})
    temporary: list[Path] = []
    deadline = _deadline(request, options.max_timeout)
    if isinstance(deadline, Problem):
        return deadline
    priority = _priority(request, options.priority_header)
    if isinstance(priority, Problem):
        return priority
    inputs = await _inputs(request, served, temporary)
    if isinstance(inputs, Problem):
        _remove(temporary)
        return inputs
    gate = served.gate
    refusal = gate.admit()
    if refusal is not None:
        _remove(temporary)
        return problem(
            429, "Too many requests",
            f"'{served.name}' has {refusal.queue_ahead} requests in flight (max_queue "
            f"{gate.max_queue}); retry after {refusal.retry_after}s",
            headers={"Retry-After": str(refusal.retry_after)},
            queue_ahead=refusal.queue_ahead, retry_after=refusal.retry_after)
    service.enter()
    return Admitted(service, served, inputs, deadline, priority, temporary,
                    trace_context(request))


def stopping() -> Response:
    return problem(503, "Shutting down", "the service is stopping: not taking requests",
                   headers={"Retry-After": "1"})


async def _finished_or_gone(request: Request, handle: ItemHandle) -> bool:
    """Wait for the item; False as soon as the client disconnects first."""
    if handle.done():
        return True
    finished = handle.finished()
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((finished, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is going away: the item with it
        handle.cancel()
        raise
    finally:
        if not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return finished.done()


async def _disconnect(request: Request) -> None:
    """Return when the client disconnects (the body has been read before this runs)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def trace_context(request: Request) -> dict[str, str] | None:
    """The request's W3C trace context, for its item's span to be a child of: the span an
    OpenTelemetry instrumentation of the server made for the request (FastAPI's own, or an ASGI
    middleware's), when there is one; else its ``traceparent`` header (and ``tracestate``
    with it) when well formed (at most 512 characters each, the W3C's form); None otherwise.
    The tracer checks the rest (an all-zero id, say); a request is never refused over them."""
    current = _current_span()
    if current is not None:
        return current
    parent = request.headers.get("traceparent")
    if parent is None or len(parent) > 512 or not _TRACEPARENT.fullmatch(parent.strip()):
        return None
    context = {"traceparent": parent.strip()}
    state = request.headers.get("tracestate")
    if state is not None and _TRACESTATE.fullmatch(state):
        context["tracestate"] = state
    return context


def _current_span() -> dict[str, str] | None:
    """The W3C headers of the span current in this request, when there is one (OpenTelemetry is
    not imported for this: only looked at when something else has imported it)."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier or None


def _deadline(request: Request, cap: float | None) -> float | Problem | None:
    raw = request.headers.get("x-request-timeout")
    field = "X-Request-Timeout"
    if raw is None:
        raw, field = request.query_params.get("timeout"), "timeout"
    if raw is None:
        return cap
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        return invalid([{"loc": (field,), "msg": f"must be a number of seconds > 0, got {raw!r}"}])
    return value if cap is None else min(value, cap)


def _priority(request: Request, header: str | None) -> int | Problem | None:
    if header is None:
        return None
    raw = request.headers.get(header)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return invalid([{"loc": (header,), "msg": f"must be an integer (higher first), "
                                                  f"got {raw!r}"}])


async def _inputs(request: Request, served: Served,
                  temporary: list[Path]) -> dict[str, Any] | Problem:
    """The item's inputs from the body, or the problem with it."""
    ports = served.ports
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await _form(request, served)
            if isinstance(form, Problem):
                return form
            body = ports.inputs.model_validate(form)
        elif ctype in ("", "application/json") or ctype.endswith("+json"):
            raw = await request.body()
            body = ports.inputs.model_validate_json(raw if raw.strip() else b"{}")
        else:
            return problem(415, "Unsupported media type", f"send application/json"
                           f"{' or multipart/form-data' if ports.files else ''}, not {ctype!r}")
    except ValidationError as exc:
        return invalid(exc.errors(include_url=False))
    inputs = ports.values(body)
    for name in ports.paths & inputs.keys():
        path = write_temporary(inputs[name])
        temporary.append(path)
        inputs[name] = path
    return inputs


async def _form(request: Request, served: Served) -> dict[str, Any] | Problem:
    try:
        form = await request.form()
    except Exception as exc:
        return problem(400, "Malformed form", f"the form cannot be read: {exc}")
    data: dict[str, Any] = {}
    files = served.ports.files
    text_ports = {port.name for port in served.ports.graph.inputs if port.annotation is str}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data[key] = await value.read()
        elif key in files:
            data[key] = value.encode()
        elif key in text_ports:
            data[key] = value
        else:
            try:
                data[key] = json.loads(value)
            except ValueError:
                data[key] = value
    return data


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    paths.clear()


__all__ = ["MEDIA", "Admitted", "admit", "pipeline_routes", "probe_routes", "stopping",
           "trace_context"]
