"""``POST /v1/pipelines/{name}/stream``: server-sent events of a request's progress and of
components that yield (issue 12, item 5).

Not built yet: the lead's part. :func:`stream_routes` is where it goes; the app already
includes the router it returns (empty for now), behind the same auth and request ids.
"""

from __future__ import annotations

from fastapi import APIRouter

from legato.serve.lifecycle import Service


def stream_routes(service: Service) -> APIRouter:
    """The streaming routes of the served pipelines (none yet)."""
    return APIRouter(tags=["streaming"])


__all__ = ["stream_routes"]
