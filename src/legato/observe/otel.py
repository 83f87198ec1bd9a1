"""OpenTelemetry for legato: where spans go (:func:`configure`, from the standard ``OTEL_*``
environment variables) and turning tracing on for an engine (:func:`enable`; ``LEGATO_OTEL``,
:func:`wanted`). The spans themselves are made by :class:`~legato.observe.spans.Tracing`, an
event-bus subscriber (see :mod:`legato.observe.spans`). OpenTelemetry is imported here only when
tracing is asked for.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from legato.engine import Engine
from legato.errors import ConfigError
from legato.observe.spans import INSTALL, OPEN_BATCHES, OPEN_ITEMS, Tracing, trace_api

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider


# -- configuration -------------------------------------------------------------------------

_configured: TracerProvider | None = None
_configure_lock = threading.Lock()
EXPORTERS = ("otlp", "console", "none")


def configure() -> TracerProvider:
    """The tracer provider legato's spans go to, set up once per process.

    When the application already installed a global tracer provider
    (``opentelemetry.trace.set_tracer_provider``), that one. Otherwise an SDK
    ``TracerProvider`` is made and installed globally: its resource from ``Resource.create()``
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``; the service name defaults to
    ``legato``), a ``BatchSpanProcessor`` per exporter that ``OTEL_TRACES_EXPORTER`` names
    (``otlp``, the default: OTLP over HTTP, configured by ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``..._HEADERS`` and the rest; ``console``: JSON
    on stdout; ``none``). Raises ConfigError when the ``otel`` extra is not installed or the
    variable names another exporter.
    """
    global _configured
    trace = trace_api()
    with _configure_lock:
        if _configured is not None:
            return _configured
        current = trace.get_tracer_provider()
        if not isinstance(current, trace.ProxyTracerProvider):
            _configured = current
            return current
        provider = _sdk_provider()
        trace.set_tracer_provider(provider)
        _configured = trace.get_tracer_provider()
        return _configured


def _sdk_provider() -> TracerProvider:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(f"tracing needs the OpenTelemetry SDK: {INSTALL} ({exc.name} is "
                          "missing)") from None
    names = [name.strip().lower() for name in
             os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ConfigError(f"OTEL_TRACES_EXPORTER must name exporters among "
                          f"{', '.join(EXPORTERS)}, got {unknown[0]!r}")
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", "") else {"service.name": "legato"}
    provider = SdkProvider(resource=Resource.create(attributes))
    for name in dict.fromkeys(names):
        if name == "none":
            continue
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return provider


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                              os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
    if protocol != "http/protobuf":
        raise ConfigError(f"legato exports OTLP traces over http/protobuf; "
                          f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(f"tracing to OTLP needs its exporter: {INSTALL} ({exc.name} is "
                          "missing)") from None
    return OTLPSpanExporter()  # endpoint, headers, timeout... from OTEL_EXPORTER_OTLP_*


def enable(engine: Engine | None = None, *,
           tracer_provider: TracerProvider | None = None) -> Callable[[], None]:
    """Trace every run of ``engine`` (default: the process's default engine) to
    ``tracer_provider`` (default: :func:`configure`'s). Returns the function that stops it:
    it detaches, ends the spans still open and flushes what is buffered. Enabling an engine
    already traced changes nothing and returns the first call's stop."""
    provider = tracer_provider if tracer_provider is not None else configure()
    if engine is None:
        from legato.engines import default_engine

        engine = default_engine()
    with _ENABLED_LOCK:
        found = _ENABLED.get(engine)
        if found is not None:
            return found
        detach = Tracing(provider).attach(engine)

        def disable() -> None:
            with _ENABLED_LOCK:
                _ENABLED.pop(engine, None)
            detach()
            flush = getattr(provider, "force_flush", None)
            if callable(flush):
                flush()

        _ENABLED[engine] = disable
    return disable


_ENABLED: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()
_ENABLED_LOCK = threading.Lock()


def wanted() -> bool:
    """Whether ``LEGATO_OTEL`` asks for traces (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get("LEGATO_OTEL", "").strip().lower() in ("1", "true", "yes", "on")


__all__ = ["EXPORTERS", "OPEN_BATCHES", "OPEN_ITEMS", "Tracing", "configure", "enable",
           "wanted"]
