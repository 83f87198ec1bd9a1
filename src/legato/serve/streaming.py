"""``POST /v1/pipelines/{name}/stream``: a request's progress as server-sent events.

The request comes in as ``POST /v1/pipelines/{name}`` does (same body, deadline, priority,
admission and auth); it is submitted with ``updates=True`` and the response is
``text/event-stream``, one event per update, as it happens:

- ``event: node`` — a node of this request finished: ``{"node", "ms", "output"}`` (its outputs
  when they are JSON and small, else left out);
- ``event: chunk`` — a generator component yielded: ``{"node", "index", "value"}``, as soon as
  it was yielded, while the stages before and after it are batched with other requests';
- ``event: result`` — the answer, the same JSON object ``POST /v1/pipelines/{name}`` returns;
  or ``event: error`` — the problem (``application/problem+json``'s body) it would return.

A client that goes away stops the stream and cancels the item.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from legato.engine import Chunk, Dropped, ItemHandle, NodeDone
from legato.serve.lifecycle import Served, Service
from legato.serve.problems import documented, failed, problem
from legato.serve.routes import Admitted, admit, stopping

SMALL = 4096  # bytes of JSON: a node's outputs larger than this are left out of its event


def stream_routes(service: Service) -> APIRouter:
    """``POST /v1/pipelines/{name}/stream`` for each served pipeline."""
    router = APIRouter(tags=["streaming"])
    for served in service.served.values():
        router.add_api_route(
            f"/v1/pipelines/{served.name}/stream", _endpoint(service, served),
            methods=["POST"], name=f"stream_{served.name}",
            operation_id=f"stream_{served.name}",
            summary=f"Run '{served.name}' on one item, its progress as server-sent events",
            responses={**documented(401, 422, 429, 503),
                       200: {"content": {"text/event-stream": {}},
                             "description": "events: node, chunk, then result or error"}},
            openapi_extra={"requestBody": {"required": bool(served.ports.fields), "content": {
                "application/json": {"schema": {
                    "$ref": f"#/components/schemas/{served.ports.inputs.__name__}"}}}}})
    return router


def _endpoint(service: Service, served: Served) -> Any:
    async def stream(request: Request) -> Response:
        admitted = await admit(request, service, served)
        if isinstance(admitted, Response):
            service.counts[(served.name, admitted.status_code)] += 1
            return admitted
        handle = admitted.submit(updates=True)
        if handle is None:
            admitted.done(completed=False)
            return stopping()
        service.counts[(served.name, 200)] += 1
        return StreamingResponse(_events(admitted, handle), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return stream


async def _events(admitted: Admitted, handle: ItemHandle) -> AsyncIterator[bytes]:
    completed = False
    try:
        assert handle.updates is not None
        async for update in handle.updates:
            if isinstance(update, Chunk):
                yield _event("chunk", {"node": update.node, "index": update.index,
                                       "value": _jsonable(update.value)})
            elif isinstance(update, NodeDone):
                data: dict[str, Any] = {"node": update.node,
                                        "ms": round(1000 * (update.end - update.start), 3)}
                output = _small(update.outputs)
                if output is not None:
                    data["output"] = output
                yield _event("node", data)
        yield _final(admitted, handle)
        completed = handle.exception() is None
    finally:  # also when the client went away (the generator is closed): cancel the item
        if not handle.done():
            handle.cancel()
        admitted.done(completed=completed)


def _final(admitted: Admitted, handle: ItemHandle) -> bytes:
    error = handle.exception()
    if error is not None:
        answer = failed(error, debug=admitted.service.options.debug)
        return _event("error", json.loads(bytes(answer.body)))
    result = handle.result()
    if isinstance(result, Dropped):
        answer = problem(503, "Dropped", f"the item was dropped at node '{result.node}' "
                         f"({result.reason})", node=result.node, reason=result.reason)
        return _event("error", json.loads(bytes(answer.body)))
    body = admitted.served.ports.answer(result)
    return b"event: result\ndata: " + body + b"\n\n"


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _small(outputs: Any) -> Any:
    """A node's outputs as JSON when they have a JSON form and it is small, else None."""
    if outputs is None:
        return None
    try:
        text = json.dumps(outputs, default=_default)
    except (TypeError, ValueError):
        return None
    return json.loads(text) if len(text) <= SMALL else None


def _jsonable(value: Any) -> Any:
    """A chunk as JSON: bytes as ``{"$bytes": base64}``, others as their JSON form (``str``
    when they have none: a chunk is never lost)."""
    try:
        return json.loads(json.dumps(value, default=_default))
    except (TypeError, ValueError):
        return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} has no JSON form")


__all__ = ["stream_routes"]
