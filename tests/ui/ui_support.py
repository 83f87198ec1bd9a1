"""What the UI tests share besides fixtures (imported by name: ``conftest`` is ambiguous when
several test folders run together)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>legato</title></head>
<body><div id="app"></div></body></html>
"""


def wait_for(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.01)


@dataclass
class Recorded:
    """A store with one ``scored`` map run of 20 items (``run``) and one ``waiting`` run."""

    path: Path
    run: str
    items: int


@dataclass
class Served:
    """A UI server started by the ``serving`` fixture."""

    url: str
    client: Any  # httpx.Client
    handle: Any
