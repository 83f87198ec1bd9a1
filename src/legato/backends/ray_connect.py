"""Connecting to Ray for the Ray backend: start a local instance, or join a cluster within a
bounded time.

``address=None`` starts a local instance sized to this machine (or to ``num_cpus``), whose
workers see this process's ``sys.path`` (so that components defined in modules found through
it, tests included, import there too). ``"auto"``, ``"HOST:PORT"`` and ``"ray://HOST:PORT"`` join
a running cluster: first a plain TCP connection, so that nothing listening fails at once, then
``ray.init`` on a helper thread, given up after ``timeout`` seconds (Ray itself may retry for
minutes). Ray is imported here, on first use only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from typing import Any

from legato.backends.local import machine_capacity
from legato.errors import ConfigError


def ray_module() -> Any:
    """The ``ray`` package, imported on first use; a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the Ray backend needs Ray: pip install 'legato[ray]'") from exc
    return ray


def connect(
    ray: Any, address: str | None, num_cpus: float | None, timeout: float,
    init_kwargs: dict[str, Any],
) -> bool:
    """Start or join Ray; True when this process started the instance (and must end it)."""
    if address is None:
        options: dict[str, Any] = {
            "address": "local", "include_dashboard": False,
            "num_cpus": int(num_cpus) if num_cpus is not None else int(machine_capacity()["cpus"]),
        }
        if "job_config" not in init_kwargs and "runtime_env" not in init_kwargs:
            options["job_config"] = ray.job_config.JobConfig(code_search_path=_code_paths())
        ray.init(**{**options, **init_kwargs})
        return True
    if num_cpus is not None:
        raise ConfigError(f"num_cpus sizes a local Ray instance; a cluster joined at "
                          f"{address!r} has the size it has (leave num_cpus out)")
    if address != "auto":
        _probe(address, timeout)
    _bounded_init(ray, address, timeout, init_kwargs)
    return False


def _code_paths() -> list[str]:
    """This process's import path, for the workers of a local instance (so that components
    defined in modules found through it, tests included, import there too)."""
    paths = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if os.path.isdir(path) and path not in paths:
            paths.append(path)
    return paths


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with a clear message, when nothing listens at ``address``."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} must be 'auto', 'HOST:PORT' or "
                          "'ray://HOST:PORT'")
    try:
        with socket.create_connection((host, int(port)), timeout=min(timeout, 10.0)):
            pass
    except OSError as exc:
        raise ConfigError(f"no Ray cluster answers at {address!r} ({exc}); start one with "
                          "'ray start --head', or leave the address out for a local "
                          "instance") from exc


def _bounded_init(ray: Any, address: str, timeout: float, init_kwargs: dict[str, Any]) -> None:
    """``ray.init(address)`` that gives up after ``timeout`` seconds (Ray itself may retry
    for minutes); a connection made after that is shut down at once."""
    finished = threading.Event()
    lock = threading.Lock()
    state: dict[str, Any] = {"abandoned": False, "error": None}

    def connect() -> None:
        try:
            ray.init(address=address, **init_kwargs)
        except BaseException as exc:
            state["error"] = exc
        with lock:
            finished.set()
            late = state["abandoned"] and state["error"] is None
        if late:
            shutdown(ray)

    threading.Thread(target=connect, name="legato-ray-connect", daemon=True).start()
    if not finished.wait(timeout):
        with lock:
            if not finished.is_set():
                state["abandoned"] = True
                raise ConfigError(f"the Ray cluster at {address!r} did not answer within "
                                  f"{timeout:g} s; check the address (and that it is a Ray "
                                  "cluster), or raise timeout=")
    error = state["error"]
    if error is not None:
        raise ConfigError(f"could not join the Ray cluster at {address!r}: "
                          f"{type(error).__name__}: {error}") from error


def shutdown(ray: Any) -> None:
    """``ray.shutdown()``, quietly (Ray may be half gone at interpreter exit)."""
    with contextlib.suppress(Exception):
        ray.shutdown()


__all__ = ["connect", "ray_module", "shutdown"]
