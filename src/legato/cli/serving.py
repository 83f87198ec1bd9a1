"""``legato serve``: serve pipelines over HTTP (``pip install legato[serve]``).

Thin over :func:`legato.serve.serve`: the pipelines come from ``FILE:PIPELINE`` arguments or
a ``--config`` file (:func:`legato.serve.load_config`); a flag given on the command line wins
over the file's value. The server runs until SIGTERM or Ctrl-C, drains, and exits 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from legato.cli.common import UsageError, reporting, settings
from legato.cli.options import Otel, Resources, parse_resources, traced
from legato.engines import default_engine
from legato.loader import load


def serve(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="FILE:PIPELINE...", help="The pipelines to serve (path/to/file.py:name or "
        "package.module:name), each at POST /v1/pipelines/NAME.", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", help="A legato.yaml declaring the pipelines and any of "
        "these options (flags given here win).", show_default=False)] = None,
    host: Annotated[str | None, typer.Option(
        help="Interface to bind [default: 127.0.0.1].", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        help="Port (0: any free one) [default: 8000].", show_default=False)] = None,
    max_queue: Annotated[int | None, typer.Option(
        "--max-queue", metavar="N", help="Requests of one pipeline in flight at once; past "
        "it, 429 with Retry-After [default: 4 x CPUs, at least 16].", show_default=False)] = None,
    max_timeout: Annotated[float | None, typer.Option(
        "--max-timeout", metavar="SECONDS", help="Cap on a request's deadline "
        "(X-Request-Timeout or ?timeout=), and the deadline of one that gives none.",
        show_default=False)] = None,
    priority_header: Annotated[str | None, typer.Option(
        "--priority-header", metavar="NAME", help="A header whose integer value is the "
        "request's priority (higher first): for trusted callers.", show_default=False)] = None,
    api_key_file: Annotated[Path | None, typer.Option(
        "--api-key-file", metavar="FILE", help="Bearer API keys, one per line (reloaded on "
        "SIGHUP); LEGATO_API_KEYS (comma-separated) adds more.", show_default=False)] = None,
    open_docs: Annotated[bool | None, typer.Option(
        "--open-docs/--no-open-docs", help="Serve /docs, /openapi.json and /metrics without "
        "a key.", show_default=False)] = None,
    insecure: Annotated[bool | None, typer.Option(
        "--insecure", help="Bind to a non-loopback host even with no API key.",
        show_default=False)] = None,
    drain_timeout: Annotated[float | None, typer.Option(
        "--drain-timeout", metavar="SECONDS", help="On SIGTERM, how long in-flight requests "
        "may take [default: 30].", show_default=False)] = None,
    store: Annotated[str | None, typer.Option(
        "--store", metavar="URL|default", help="Record the service as one run, each request "
        "an item (a store URL or path, or 'default').", show_default=False)] = None,
    ui: Annotated[bool | None, typer.Option(
        "--ui/--no-ui", help="Mount the web UI at /ui [default: on].",
        show_default=False)] = None,
    resources: Resources = None,
    otel: Otel = False,
) -> None:
    """Serve pipelines over HTTP, one typed endpoint each, until SIGTERM (drained, exit 0)."""
    with reporting(ctx):
        try:
            from legato.serve import load_config
            from legato.serve import serve as run_server
        except ImportError as exc:
            raise UsageError(f"legato serve needs the serve extra: pip install 'legato[serve]' "
                             f"({exc.name} is missing)") from None
        options: dict[str, Any] = {}
        specs = list(targets or [])
        if config is not None:
            loaded = load_config(config)
            options = loaded.model_dump(exclude={"pipelines"}, exclude_unset=True)
            if loaded.api_key_file is not None:
                options["api_key_file"] = loaded.api_key_file
            specs = specs or list(loaded.pipelines)
        if not specs:
            raise UsageError("name the pipelines to serve (FILE:PIPELINE ...) or give "
                             "--config legato.yaml")
        given = {"host": host, "port": port, "max_queue": max_queue, "max_timeout": max_timeout,
                 "priority_header": priority_header, "api_key_file": api_key_file,
                 "open_docs": open_docs, "insecure": insecure, "drain_timeout": drain_timeout,
                 "store": store, "ui": ui}
        options.update({key: value for key, value in given.items() if value is not None})
        if resources:
            options["resources"] = parse_resources(resources)
        if settings(ctx).debug:
            options["debug"] = True
        pipelines = [load(spec) for spec in specs]
        with traced(default_engine(), otel):  # the engine the service's runs use
            run_server(*pipelines, **options)


__all__ = ["serve"]
