"""legato: orchestrate AI models and processes.

Write each model or process as a typed :func:`component`, wire components into a
:func:`pipeline` in plain Python, have the whole graph checked, and run it on one item
(``run``/``arun``) or many (``map``), locally or on a cluster.

The engine's names (``Engine``, ``Run``, ``ItemHandle``, ``Failure``, ``Dropped``, the clocks,
``RunStats``, the updates) are imported on first use: a process that only defines or unpickles
components (a worker process, a type checker's import) need not load the engine.
"""

from typing import TYPE_CHECKING

from legato.component import Component, Instance, Port, component
from legato.constructs import branch, loop, map
from legato.errors import (
    BuildError,
    ComponentError,
    ComponentTimeout,
    ConfigError,
    DeadlineExceeded,
    GraphError,
    InputError,
    LegatoError,
    OutputError,
    Problem,
    RecordError,
    RunCancelled,
    RunError,
    StoreError,
    TracingError,
    WorkerDied,
)
from legato.graph import Graph, Node, Ref
from legato.options import Batch, Block, Fifo, RateLimit, Resources, Retry
from legato.pipeline import Pipeline, pipeline
from legato.streaming import Interrupt, Stream, StreamStats, Tick, replay
from legato.usage import report_usage

if TYPE_CHECKING:
    from legato.engine import (
        Chunk,
        Dropped,
        Engine,
        Failure,
        ItemHandle,
        ManualClock,
        MonotonicClock,
        NodeDone,
        Run,
        RunStats,
    )

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Block",
    "BuildError",
    "Chunk",
    "Component",
    "ComponentError",
    "ComponentTimeout",
    "ConfigError",
    "DeadlineExceeded",
    "Dropped",
    "Engine",
    "Failure",
    "Fifo",
    "Graph",
    "GraphError",
    "InputError",
    "Instance",
    "Interrupt",
    "ItemHandle",
    "LegatoError",
    "ManualClock",
    "MonotonicClock",
    "Node",
    "NodeDone",
    "OutputError",
    "Pipeline",
    "Port",
    "Problem",
    "RateLimit",
    "RecordError",
    "Ref",
    "Resources",
    "Retry",
    "Run",
    "RunCancelled",
    "RunError",
    "RunStats",
    "StoreError",
    "Stream",
    "StreamStats",
    "Tick",
    "TracingError",
    "WorkerDied",
    "__version__",
    "branch",
    "component",
    "loop",
    "map",
    "pipeline",
    "replay",
    "report_usage",
]


_ENGINE_NAMES = frozenset({"Chunk", "Dropped", "Engine", "Failure", "ItemHandle", "ManualClock",
                           "MonotonicClock", "NodeDone", "Run", "RunStats"})


def __getattr__(name: str) -> object:
    if name in _ENGINE_NAMES:
        from legato import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'legato' has no attribute {name!r}")
