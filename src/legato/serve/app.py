"""The ASGI app: :func:`app` builds a FastAPI application serving pipelines.

Around the routes (:mod:`legato.serve.routes`) sit two plain ASGI middlewares. :class:`Front`
gives every response an ``X-Request-Id`` (the client's, when it sent a sane one) and checks
the bearer key of every request except the probes (and the docs and metrics, with
``open_docs``). Outside it, :class:`Counted` counts each request to a pipeline, refused ones
included, into the app's :class:`~legato.observe.metrics.Metrics` (``/metrics``), which is
attached to the service's engine for the app's lifespan.

The app's lifespan opens the pipelines' runs in a thread (``/healthz`` answers at once;
``/readyz`` turns 200 when they are open) and closes them, drained, at shutdown.
Mounted inside another app, that app must run this one's lifespan (or call
``app.state.service.start()`` and ``stop()``, and ``app.state.metrics.attach(engine)`` before).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legato import __version__, engines
from legato.engine import Engine
from legato.observe.metrics import Metrics
from legato.pipeline import Pipeline
from legato.serve.auth import Keys
from legato.serve.config import ServeOptions
from legato.serve.lifecycle import Service
from legato.serve.models import upload_schema
from legato.serve.problems import failed, invalid, problem
from legato.serve.routes import pipeline_routes, probe_routes
from legato.serve.streaming import stream_routes

log = logging.getLogger("legato.serve")

PROBES = frozenset({"/healthz", "/readyz"})
DOCS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/metrics"})
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")


def app(*pipelines: Pipeline, engine: Engine | None = None, keys: Keys | None = None,
        metrics: Metrics | None = None, **options: Any) -> FastAPI:
    """A FastAPI (ASGI) app serving ``pipelines``: ``options`` are
    :class:`~legato.serve.config.ServeOptions` fields (``max_queue``, ``max_timeout``,
    ``api_keys``, ``store``...); ``engine``: the engine the runs use (default: the process's);
    ``metrics``: where ``/metrics`` counts (default: a :class:`~legato.observe.metrics.Metrics`
    of this app's own). ``app.state.service`` is the :class:`~legato.serve.lifecycle.Service`,
    ``app.state.metrics`` the metrics."""
    settings = ServeOptions(**options)
    service = Service(pipelines, settings, engine=engine)
    keys = keys if keys is not None else Keys(settings.api_keys, file=settings.api_key_file)
    metrics = metrics if metrics is not None else Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        detach = metrics.attach(engines.choose(engine, None))  # before the runs open
        starting = asyncio.ensure_future(asyncio.to_thread(_start, service))
        try:
            yield
        finally:
            await asyncio.to_thread(service.drain)
            await asyncio.to_thread(service.stop)
            await starting
            detach()
            ui = getattr(api.state, "ui", None)
            if ui is not None:  # a mounted app's own lifespan does not run: end it here
                from legato.ui.app import close

                close(ui)

    names = ", ".join(p.name for p in pipelines)
    api = ServedAPI(title=f"legato: {names}", version=__version__, lifespan=lifespan,
                  description="Pipelines served by legato: one typed endpoint each.")
    api.state.service = service
    api.state.keys = keys
    api.state.metrics = metrics
    api.include_router(pipeline_routes(service))
    api.include_router(stream_routes(service))
    api.include_router(probe_routes(service, metrics))

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return invalid(exc.errors())

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problem(exc.status_code, _reason(exc.status_code), str(exc.detail),
                       headers=exc.headers)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("a request to %s raised", request.url.path, exc_info=exc)
        return failed(exc, debug=settings.debug)

    if settings.ui:
        _mount_ui(api, service, settings, engine)
    api.add_exception_handler(Exception, crashed)
    api.add_exception_handler(RequestValidationError, validation)
    api.add_exception_handler(HTTPException, http_error)
    api.openapi = lambda: _openapi(api, service)  # type: ignore[method-assign]
    front = Front(FastAPI.__call__.__get__(api), keys=keys,
                  open_paths=PROBES | DOCS if settings.open_docs else PROBES)
    api.front = Counted(front, metrics=metrics, pipelines=frozenset(service.served))
    return api


def _mount_ui(api: FastAPI, service: Service, settings: ServeOptions,
              engine: Engine | None) -> None:
    """The web UI at ``/ui`` (:func:`legato.ui.app`), behind :class:`Front`'s keys like every
    path but the probes: the store the service records into (or the default one), the
    service's engine live, its response counts on the service page."""
    from legato import engines
    from legato.ui.app import app as ui_app

    store = None if settings.store in (None, "default") else settings.store
    api.state.ui = ui_app(store, engine=engines.choose(engine, None), service=service,
                          base="/ui", metrics=getattr(api.state, "metrics", None))
    api.mount("/ui", api.state.ui)


def _start(service: Service) -> None:
    try:
        service.start()
    except BaseException as exc:
        log.error("the service failed to start: %s: %s", type(exc).__name__, exc)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _openapi(api: FastAPI, service: Service) -> dict[str, Any]:
    """FastAPI's schema, with each pipeline's request models (and their definitions) added."""
    if api.openapi_schema is not None:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description,
                         routes=api.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for served in service.served.values():
        model = served.ports.inputs
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        if served.ports.files:
            components[f"{model.__name__}Upload"] = upload_schema(model, served.ports.files)
    api.openapi_schema = schema
    return schema


class ServedAPI(FastAPI):
    """FastAPI, with :class:`Front` around everything (its error responses included)."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)


class Counted:
    """Counts every request to a served pipeline (``/v1/pipelines/{name}`` and its
    ``/stream``), refused ones included (401, 429...): its status and how long it took, to the
    end of its response's body. Other paths pass through uncounted, and so does a name that
    is not served (the label stays one of the served pipelines' names)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, pipelines: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.pipelines = pipelines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pipeline = self._pipeline(scope) if scope["type"] == "http" else None
        if pipeline is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: the server answers 500 to an app that raised

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.http_request(pipeline, status, time.perf_counter() - started)

    def _pipeline(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if not path.startswith("/v1/pipelines/"):
            return None
        name = path[len("/v1/pipelines/"):].removesuffix("/stream")
        return name if name in self.pipelines else None


class Front:
    """Request ids and bearer-key auth, as plain ASGI (no body buffering, no extra task)."""

    def __init__(self, app: ASGIApp, *, keys: Keys, open_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        tag = (b"x-request-id", request_id.encode("latin-1"))

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), tag]
            await send(message)

        if (self.keys.required and scope["path"] not in self.open_paths
                and not self.keys.accepts(authorization)):
            refused = problem(401, "Unauthorized", "send a valid API key: "
                              "'Authorization: Bearer KEY'",
                              headers={"WWW-Authenticate": "Bearer"}, request_id=request_id)
            await refused(scope, receive, tagged)
            return
        await self.app(scope, receive, tagged)


__all__ = ["DOCS", "PROBES", "Counted", "Front", "ServedAPI", "app"]
