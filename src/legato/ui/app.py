"""The web UI's ASGI app: the pages, their static assets, the JSON API, live events, metrics.

:func:`app` builds it over a store (opened read-only, see :mod:`legato.ui.readonly`) and a
:class:`~legato.ui.live.Hub` attached to this process's engines. The routes, with ``B`` the
base path the app is served under (``""`` for ``legato ui``, ``"/ui"`` inside ``legato
serve``; the page learns it from ``<meta name="legato-base">``):

- pages: ``B/``, ``B/runs``, ``B/runs/{id}``, ``B/runs/{id}/timeline``,
  ``B/runs/{id}/service``, ``B/runs/{id}/stream``: the front end's ``index.html`` (a run that
  does not exist: status 404, the same page saying "Run ID not found");
- ``B/static/...``: the built assets (``app.js``, ``app.css``);
- ``B/api/runs``, ``B/api/runs/{id}``, ``.../timeline``, ``.../failures``, ``.../service``,
  ``.../stream``: JSON (``docs/ui.md`` gives every shape); ``.../events``: server-sent events
  of a live run;
- ``B/metrics``: Prometheus text, where :mod:`legato.observe.metrics` is installed.

Every route only reads. Store queries are blocking, so their routes are plain functions, which
FastAPI runs in its thread pool; the events route is a coroutine on the server's loop. A store
that cannot be opened yet (``legato serve`` creates its store when it starts; a process that has
not recorded a run yet has none) is opened again on a later request; meanwhile the API shows the
live runs only and says why in ``store_error``.
"""

from __future__ import annotations

import asyncio
import html
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.responses import StreamingResponse

from legato import __version__
from legato.engine import Engine
from legato.errors import ConfigError, StoreError
from legato.ui import dashboards, queries
from legato.ui.failures import failures as failures_of
from legato.ui.live import INTERVAL, Hub, queue_depth
from legato.ui.readonly import ReadOnlyStore
from legato.ui.timeline import timeline as timeline_of

STATIC = Path(__file__).with_name("static")
KEEPALIVE = 15.0  # seconds between comments on a quiet event stream (proxies close idle ones)
_RETRY = 2.0  # seconds before a store that failed to open is tried again
_FALLBACK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>legato</title></head>
<body><main><h1>legato</h1><p>The web UI's assets are not built into this installation
(<code>legato/ui/static/index.html</code>); the JSON API answers under <code>api/runs</code>.
</p></main></body></html>
"""


class StoreSlot:
    """The UI's store: opened on first use and again after a failure (every ``_RETRY`` s)."""

    def __init__(self, store: ReadOnlyStore | str | Path | None) -> None:
        self._given = store
        self._store = store if isinstance(store, ReadOnlyStore) else None
        self._lock = threading.Lock()
        self._failed_at = -_RETRY
        self.error: str | None = None

    def get(self) -> ReadOnlyStore | None:
        """The open store, or None (``error`` says why) when it cannot be opened now."""
        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None and time.monotonic() - self._failed_at >= _RETRY:
                try:
                    given = self._given if not isinstance(self._given, ReadOnlyStore) else None
                    self._store = ReadOnlyStore(given)
                    self.error = None
                except StoreError as exc:
                    self._failed_at = time.monotonic()
                    self.error = " ".join(str(exc).split())
        return self._store

    def close(self) -> None:
        if self._store is not None and not isinstance(self._given, ReadOnlyStore):
            self._store.close()


def app(store: ReadOnlyStore | str | Path | None = None, *, engine: Engine | None = None,
        service: Any = None, base: str = "", static_dir: str | Path | None = None,
        hub: Hub | None = None, metrics: Any = None) -> FastAPI:
    """The UI as a FastAPI app (see the module docstring).

    ``store``: a :class:`ReadOnlyStore`, or a store URL or path (None: ``LEGATO_STORE``, else
    ``.legato/legato.db``), opened read-only when first needed. ``engine``: an engine whose
    runs show live, besides the process's default engine (a service's engine, a test's).
    ``service``: a ``legato serve`` :class:`~legato.serve.Service`, for the response counts on
    the service page. ``base``: the path the app is mounted at, told to the page.
    ``static_dir``: where ``index.html`` and the assets are (default: the package's).
    ``hub``: the live hub to use (default: a new one attached to the engines above).
    ``metrics``: a :class:`legato.observe.metrics.Metrics` for ``/metrics`` (default: one of
    this app's own, when prometheus-client is installed). ``app.state.hub`` is the hub,
    ``app.state.store`` the store's slot.
    """
    from legato.engines import default_engine

    slot = StoreSlot(store)
    if hub is None:
        hub = Hub()
        hub.attach(default_engine())
        if engine is not None:
            hub.attach(engine)
    base = "/" + base.strip("/") if base.strip("/") else ""
    static = Path(static_dir) if static_dir is not None else STATIC
    api = FastAPI(title="legato UI", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    api.state.hub = hub
    api.state.store = slot

    def require_store() -> ReadOnlyStore | None:
        return slot.get()

    def run_or_404(run_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(the run's detail from the store, its live summary): 404 when neither has it."""
        found = require_store()
        detail = None
        if found is not None:
            detail = queries.run_detail(found, run_id, live=hub.is_live(run_id))
        summary = hub.summary(run_id)
        if detail is None and summary is None:
            raise HTTPException(404, f"run {run_id} not found")
        return detail, summary

    # -- pages ---------------------------------------------------------------------------------

    def page(status: int = 200, message: str | None = None) -> HTMLResponse:
        index = static / "index.html"
        try:
            text = index.read_text(encoding="utf-8")
        except OSError:
            text = _FALLBACK
        extra = f'<meta name="legato-base" content="{html.escape(base)}">'
        if message is not None:
            extra += (f'\n<meta name="legato-status" content="{status}">'
                      f'\n<meta name="legato-message" content="{html.escape(message)}">')
        text = _inject(text, extra, message)
        return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-cache"})

    def run_page(run_id: str) -> HTMLResponse:
        found = require_store()
        if hub.summary(run_id) is not None or (
                found is not None and queries.exists(found, run_id)):
            return page()
        return page(404, f"Run {run_id} not found")

    @api.get("/", include_in_schema=False)
    @api.get("/runs", include_in_schema=False)
    def runs_html() -> HTMLResponse:
        return page()

    @api.get("/runs/{run_id}", include_in_schema=False)
    @api.get("/runs/{run_id}/timeline", include_in_schema=False)
    @api.get("/runs/{run_id}/service", include_in_schema=False)
    @api.get("/runs/{run_id}/stream", include_in_schema=False)
    def run_html(run_id: str) -> HTMLResponse:
        return run_page(run_id)

    @api.get("/static/{name:path}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        root = static.resolve()
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            raise HTTPException(404, f"no asset {name}")
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    # -- the JSON API --------------------------------------------------------------------------

    @api.get("/api/runs")
    def runs_api(pipeline: str | None = None, status: str | None = None,
                 mode: str | None = None, limit: int = Query(50, ge=1, le=queries.MAX_LIMIT),
                 before: str | None = None) -> JSONResponse:
        live = hub.live()
        found = require_store()
        page_: dict[str, Any]
        if found is None:
            page_ = {"runs": [], "next": None, "total": 0, "pipelines": [],
                     "statuses": list(queries.STATUSES)}
        else:
            try:
                page_ = queries.runs_page(found, pipeline=pipeline, status=status, mode=mode,
                                          limit=limit, before=before, live=live)
            except ConfigError as exc:
                raise HTTPException(400, str(exc)) from None
        if not before:
            _add_unrecorded(page_, hub, found, pipeline, status, mode)
        page_["store_error"] = slot.error if found is None else None
        return JSONResponse(page_)

    @api.get("/api/runs/{run_id}")
    def run_api(run_id: str) -> JSONResponse:
        detail, summary = run_or_404(run_id)
        live = hub.is_live(run_id)
        if detail is None:
            assert summary is not None
            detail = {"run": {**summary, "error": None, "target": None, "inputs": {},
                              "options": {}, "host": "", "pid": 0},
                      "graph": None, "nodes": {}, "live": live}
        if summary is not None and hub.knows(run_id):
            nodes = hub.nodes(run_id) or {}
            detail["nodes"] = queries.with_graph_nodes(nodes, detail["graph"])
            if live:
                run = detail["run"]
                run.update(done=summary["done"], failed=summary["failed"], live=True,
                           recorded=max(run["recorded"], summary["recorded"]))
        elif summary is not None:
            for path, running in hub.running(run_id).items():
                entry = detail["nodes"].get(path)
                if entry is not None:
                    entry["running"] = running
                    entry["status"] = "running"
        detail["live"] = live
        return JSONResponse(detail)

    @api.get("/api/runs/{run_id}/timeline")
    def timeline_api(run_id: str, aggregate: int = Query(0, ge=0, le=1)) -> JSONResponse:
        detail, summary = run_or_404(run_id)
        found = require_store()
        run = (detail or {}).get("run") or summary or {}
        started = run.get("started") or time.time()
        if found is None or detail is None:
            return JSONResponse({"t0": started, "t1": started, "lanes": [], "nodes": [],
                                 "bars": {key: [] for key in _BARS}})
        return JSONResponse(timeline_of(found, run_id, started=started,
                                        finished=run.get("finished"),
                                        aggregate=bool(aggregate)))

    @api.get("/api/runs/{run_id}/failures")
    def failures_api(run_id: str) -> JSONResponse:
        detail, _ = run_or_404(run_id)
        found = require_store()
        if found is None or detail is None:
            return JSONResponse({"groups": []})
        return JSONResponse(failures_of(found, run_id))

    @api.get("/api/runs/{run_id}/service")
    def service_api(run_id: str) -> JSONResponse:
        detail, summary = run_or_404(run_id)
        found = require_store()
        if summary is None:
            assert detail is not None
            assert found is not None
            return JSONResponse(dashboards.service(found, detail["run"]))
        responses = _responses(service, summary["pipeline"])
        if not responses and detail is not None:
            responses = dashboards.responses(detail["run"])
        depth = queue_depth(hub.engine_of(run_id), hub.components(run_id))
        return JSONResponse(hub.service(run_id, responses=responses, depth=depth))

    @api.get("/api/runs/{run_id}/stream")
    def stream_api(run_id: str) -> JSONResponse:
        detail, summary = run_or_404(run_id)
        found = require_store()
        if summary is None:
            assert detail is not None
            assert found is not None
            return JSONResponse(dashboards.stream(found, detail["run"]))
        numbers = hub.stream(run_id) or {}
        if detail is not None:
            stats = detail["run"]["options"].get("stream")
            numbers["stats"] = stats if isinstance(stats, dict) else None
        return JSONResponse(numbers)

    @api.get("/api/runs/{run_id}/events")
    async def events_api(run_id: str, request: Request) -> Response:
        watch = hub.watch(run_id, asyncio.get_running_loop())
        if watch is None:
            return JSONResponse({"detail": f"run {run_id} is not live in this process"},
                                status_code=404)

        async def body() -> AsyncIterator[str]:
            try:
                while not watch.closed:
                    watch.clear()
                    status = hub.status(run_id) or {"status": "running"}
                    nodes = hub.nodes(run_id) or {}
                    yield _sse("nodes", {"nodes": nodes, "run": status})
                    if status["status"] != "running":
                        yield _sse("run", status)
                        return
                    await asyncio.sleep(INTERVAL)  # coalescing: at most ~10 messages a second
                    if not watch.rung and not await watch.wait(KEEPALIVE):
                        yield ": keepalive\n\n"
            finally:
                hub.unwatch(watch)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    mount_metrics(api, hub, metrics)
    return api


_BARS = ("lane", "node", "item", "attempt", "start", "end", "status")


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _inject(text: str, extra: str, message: str | None) -> str:
    """``index.html`` with ``extra`` in its head (and, for an error page, the message as its
    title and as text for a browser without scripts)."""
    at = text.lower().find("<head")
    close = text.find(">", at) if at >= 0 else -1
    # inside <head ...>, first: before anything reads the base
    text = (text[:close + 1] + "\n" + extra + text[close + 1:]) if close >= 0 else (
        extra + "\n" + text)
    if message is not None:
        escaped = html.escape(message)
        start, end = text.lower().find("<title>"), text.lower().find("</title>")
        if 0 <= start < end:
            text = f"{text[:start + 7]}{escaped} · legato{text[end:]}"
        at = text.lower().find("<body")
        close = text.find(">", at) if at >= 0 else -1
        notice = f'\n<noscript><h1 class="legato-status">{escaped}</h1></noscript>'
        text = (text[:close + 1] + notice + text[close + 1:]) if close >= 0 else text + notice
    return text


def _responses(service: Any, pipeline: str) -> dict[str, int]:
    """A serve :class:`~legato.serve.Service`'s responses of ``pipeline`` by HTTP status."""
    counts = getattr(service, "counts", None)
    if not counts:
        return {}
    found: dict[str, int] = {}
    for (name, status), count in list(counts.items()):
        if name == pipeline:
            found[str(status)] = found.get(str(status), 0) + int(count)
    return found


def _add_unrecorded(page: dict[str, Any], hub: Hub, store: ReadOnlyStore | None,
                    pipeline: str | None, status: str | None, mode: str | None) -> None:
    """Put the live runs the store does not have (runs that record nothing) at the top of the
    first page."""
    live = hub.live()
    if not live:
        return
    listed = {run["id"] for run in page["runs"]}
    missing = live - listed
    if store is not None and missing:
        missing = {run_id for run_id in missing if not queries.exists(store, run_id)}
    extra = [summary for summary in map(hub.summary, sorted(missing)) if summary is not None
             and (not pipeline or summary["pipeline"] == pipeline)
             and (not status or summary["status"] == status)
             and (not mode or summary["mode"] == mode)]
    extra.sort(key=lambda run: -(run["started"] or 0.0))
    page["runs"][:0] = extra
    if page["total"] is not None:
        page["total"] += len(extra)
    for run in extra:
        if run["pipeline"] and run["pipeline"] not in page["pipelines"]:
            page["pipelines"].append(run["pipeline"])


def close(api: FastAPI) -> None:
    """End a UI app: its event streams and its following of the engines, then its store."""
    api.state.hub.close()
    api.state.store.close()


def mount_metrics(api: FastAPI, hub: Hub, metrics: Any = None) -> bool:
    """Serve ``/metrics`` from ``metrics`` (default: a :class:`legato.observe.metrics.Metrics`
    attached to the hub's engines) when :mod:`legato.observe.metrics` imports (its extra is
    installed); False when it does not, and then there is no ``/metrics``."""
    try:  # the metrics extra (prometheus-client) may be missing
        from legato.observe.metrics import Metrics, metrics_route
    except ImportError:
        return False
    found = metrics
    if found is None:
        found = Metrics()
        for engine in hub.engines:
            found.attach(engine)
    api.add_route("/metrics", metrics_route(found), methods=["GET"], include_in_schema=False)
    api.state.metrics = found
    return True


__all__ = ["STATIC", "StoreSlot", "app", "close", "mount_metrics"]
