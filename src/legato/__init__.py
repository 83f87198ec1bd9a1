"""legato: orchestrate AI models and processes.

Write each model or process as a typed :func:`component`, wire components into a
:func:`pipeline` in plain Python, have the whole graph checked, and run it on one item
(``run``/``arun``) or many (``map``), locally or on a cluster.
"""

from legato.component import Component, Instance, Port, component
from legato.constructs import branch, loop, map
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
    RunCancelled,
    RunError,
    StoreError,
    TracingError,
    WorkerDied,
)
from legato.graph import Graph, Node, Ref
from legato.options import Batch, Block, Fifo, RateLimit, Resources, Retry
from legato.pipeline import Pipeline, pipeline
from legato.usage import report_usage

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
    "Ref",
    "Resources",
    "Retry",
    "Run",
    "RunCancelled",
    "RunError",
    "RunStats",
    "StoreError",
    "TracingError",
    "WorkerDied",
    "__version__",
    "branch",
    "component",
    "loop",
    "map",
    "pipeline",
    "report_usage",
]
