"""Errors as ``application/problem+json`` (RFC 9457), and the one table that maps what a run
raises to an HTTP status.

=====================  ======  ==============================================================
raised by the item     status  the problem says
=====================  ======  ==============================================================
InputError             422     the inputs that do not fit
ComponentError         500     ``node``, ``error_type`` and ``error`` (the cause's), and the
                               traceback with ``debug``
OutputError            500     the output that does not fit
DeadlineExceeded       504     the deadline that passed
RunCancelled           503     the service is shutting down (or the client went away)
a Dropped result       503     the node and the queue policy's reason
anything else          500     its type and message
=====================  ======  ==============================================================
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

from legato.errors import (
    ComponentError,
    DeadlineExceeded,
    InputError,
    OutputError,
    RunCancelled,
)

MEDIA = "application/problem+json"


class Problem(JSONResponse):
    """A problem response."""

    media_type = MEDIA


def problem(status: int, title: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> Problem:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Problem(body, status_code=status, headers=dict(headers or {}))


def invalid(errors: Sequence[Mapping[str, Any]]) -> Problem:
    """422 naming each bad field: ``errors`` are pydantic's (``loc``, ``msg``)."""
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        fields.append({"field": ".".join(loc) or "(body)", "message": error.get("msg", "")})
    named = ", ".join(f"'{f['field']}': {f['message']}" for f in fields)
    return problem(422, "Invalid request", f"the request does not fit: {named}", errors=fields)


def failed(exc: BaseException, *, debug: bool) -> Problem:
    """The problem for an item's error (see the module's table)."""
    if isinstance(exc, InputError):
        return problem(422, "Invalid inputs", str(exc).removeprefix(f"item {exc.item}: ")
                       if exc.item is not None else str(exc),
                       errors=[{"field": "(inputs)", "message": str(exc)}])
    if isinstance(exc, DeadlineExceeded):
        return problem(504, "Deadline exceeded", str(exc))
    if isinstance(exc, RunCancelled):
        return problem(503, "Cancelled", str(exc))
    if isinstance(exc, ComponentError):
        cause = exc.__cause__ or exc
        extra: dict[str, Any] = {"node": exc.node, "error_type": type(cause).__name__,
                                 "error": str(cause), "attempt": exc.attempt}
        if debug:
            extra["traceback"] = "".join(traceback.format_exception(exc))
        return problem(500, "Component failed", str(exc), **extra)
    if isinstance(exc, OutputError):
        return problem(500, "Output does not fit", str(exc), error_type="OutputError")
    extra = {"error_type": type(exc).__name__}
    if debug:
        extra["traceback"] = "".join(traceback.format_exception(exc))
    return problem(500, "Internal error", f"{type(exc).__name__}: {exc}", **extra)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "request_id": {"type": "string"},
    },
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem statuses."""
    reasons = {401: "No valid API key", 422: "Inputs that do not fit",
               429: "Too many requests: retry after Retry-After seconds",
               500: "A component failed", 503: "Not ready, or shutting down",
               504: "The request's deadline passed"}
    return {status: {"description": reasons.get(status, "Problem"),
                     "content": {MEDIA: {"schema": PROBLEM_SCHEMA}}} for status in statuses}


__all__ = ["MEDIA", "Problem", "documented", "failed", "invalid", "problem"]
