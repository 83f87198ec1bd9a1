"""legato: orchestrate AI models and processes.

Write each model or process as a typed :func:`component`, wire components into a
:func:`pipeline` in plain Python, have the whole graph checked, and run it on one item
(``run``/``arun``) or many (``map``), locally or on a cluster.

The engine's names (``Engine``, ``Failure``, ``ManualClock``, ``MonotonicClock``, ``RunStats``)
are imported on first use: a process that only defines or unpickles components (a worker
process, a type checker's import) need not load the engine.
"""

from typing import TYPE_CHECKING

from legato.component import Component, Instance, Port, component
from legato.errors import (
    ComponentError,
    ComponentTimeout,
    ConfigError,
    GraphError,
    InputError,
    LegatoError,
    Problem,
    RunCancelled,
    RunError,
    StoreError,
    TracingError,
)
from legato.graph import Graph, Node, Ref
from legato.options import Batch, RateLimit, Resources, Retry
from legato.pipeline import Pipeline, pipeline
from legato.tracing import branch, map
from legato.usage import report_usage

if TYPE_CHECKING:
    from legato.engine import Engine, Failure, ManualClock, MonotonicClock, RunStats

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Component",
    "ComponentError",
    "ComponentTimeout",
    "ConfigError",
    "Engine",
    "Failure",
    "Graph",
    "GraphError",
    "InputError",
    "Instance",
    "LegatoError",
    "ManualClock",
    "MonotonicClock",
    "Node",
    "Pipeline",
    "Port",
    "Problem",
    "RateLimit",
    "Ref",
    "Resources",
    "Retry",
    "RunCancelled",
    "RunError",
    "RunStats",
    "StoreError",
    "TracingError",
    "__version__",
    "branch",
    "component",
    "map",
    "pipeline",
    "report_usage",
]


_ENGINE_NAMES = ("Engine", "Failure", "ManualClock", "MonotonicClock", "RunStats")


def __getattr__(name: str) -> object:
    if name in _ENGINE_NAMES:
        from legato import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'legato' has no attribute {name!r}")
