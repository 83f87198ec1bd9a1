"""What serve tests share besides fixtures (conftest.py has those): the started server's
handle and a bounded wait. A module of its own: ``from conftest import ...`` would pick up
whichever test folder's conftest was imported first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legato.serve import Service


@dataclass
class Served:
    url: str
    service: Service
    client: Any  # httpx.Client
    api: Any


Serving = Callable[..., Served]


def until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> bool:
    """Wait (bounded) until ``predicate()`` holds: for state another thread changes."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return True
        pause.wait(0.005)
    return predicate()
