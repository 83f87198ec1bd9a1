"""Every exception legato raises, in one tree.

::

    LegatoError                 root: ``except legato.LegatoError`` catches all of ours
    ├── GraphError              a pipeline or component is wrongly defined; carries every Problem
    │   └── TracingError        a symbolic reference was used as a Python value in a pipeline body
    ├── ConfigError             an option has a bad value (raised where it is declared)
    ├── InputError              a run was given inputs that do not fit the pipeline's input ports
    ├── OutputError             an item's output does not fit the pipeline's declared type, or
    │                           (CLI) has no JSON form: that item fails, the others go on
    ├── UsageError              the ``legato`` command line itself is wrong (exit code 2)
    ├── ComponentError          a component raised or timed out: node, item, attempt; cause chained
    │   ├── ComponentTimeout    the call ran past the component's ``timeout``
    │   └── BuildError          a class component's constructor raised: its items fail fast
    ├── RunError                the run itself could not go on (cancelled, a worker vanished)
    │   ├── RunCancelled        the run or one item was cancelled (Ctrl-C, ``close()``, a task)
    │   ├── DeadlineExceeded    an item's deadline passed before it finished
    │   ├── WorkerDied          the process, Ray worker or actor serving a call died
    │   ├── Stopped             ``legato map --on-error raise``: the first failed item stopped it
    │   └── SimulationStalled   a simulated run waits for something that can never happen
    ├── StoreError              the run store cannot be opened, read or written
    │   ├── Unstorable          a value has no stored form (cannot be pickled, or must not be)
    │   └── RecordError         a stream record file cannot be written or read back
    ├── LoadError               a pipeline file or module failed while it was imported
    │   └── SpecError           a ``FILE:PIPELINE`` spec names nothing that can be loaded
    └── RemoteTraceback         never raised: a worker's traceback text, chained as ``__cause__``

    KeyboardInterrupt           Python's: Ctrl-C
    └── Terminated              SIGTERM arrived: a command cleans up as after Ctrl-C (exit 143)

Build-time errors (GraphError, ConfigError) and run-time errors (the rest) are kept apart: a
GraphError means no node has run. Foreign exceptions are wrapped once, at the boundary where they
enter legato, with the original chained as ``__cause__``: Ray's errors by the table in
:mod:`legato.backends.ray_errors`.

Some of these are also importable where they are raised (``legato.backends.workers.WorkerDied``,
``legato.values.Unstorable``, ``legato.cli.UsageError``...): those names are this module's
classes, re-exported. A test walks the package and fails on an exception class defined anywhere
else, or missing from the drawing above.
"""

from __future__ import annotations

from dataclasses import dataclass


class LegatoError(Exception):
    """Root of every error legato raises: ``except legato.LegatoError`` catches all of ours.

    Never raised itself; catch a subclass to handle one kind of failure (the tree is drawn in
    :mod:`legato.errors`).
    """


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph: what, on which node, and where the user created that node.

    ``node`` is None for problems of the whole pipeline (its inputs or outputs).
    """

    message: str
    node: str | None = None
    location: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.node is not None:
            where = f"node '{self.node}'"
            if self.location:
                where += f" ({self.location})"
            where += ": "
        elif self.location:
            where = f"({self.location}) "
        return where + self.message


class GraphError(LegatoError):
    """Raised by the check (before anything runs) with every problem found, not only the first.

    Who raises it: ``pipeline.check()``, and every run, which checks first; also the tracer when a
    pipeline body cannot be traced at all. What to do: fix each listed problem; each names the node
    and the file:line where that node was created.
    """

    def __init__(self, problems: list[Problem], *, pipeline: str | None = None) -> None:
        self.problems = list(problems)
        self.pipeline = pipeline
        head = f"pipeline '{pipeline}'" if pipeline else "graph"
        count = len(self.problems)
        lines = [f"{head} has {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class TracingError(GraphError):
    """A symbolic reference was used as if it held a value while a pipeline body was traced.

    Raised at the offending line of the pipeline body (``if ref:``, ``len(ref)``, ``ref + 1``...).
    What to do: move the computation into a component, or use ``legato.branch`` / ``legato.map``.
    """

    def __init__(
        self, message: str, *, location: str | None = None, pipeline: str | None = None
    ) -> None:
        super().__init__([Problem(message, location=location)], pipeline=pipeline)


class ConfigError(LegatoError, ValueError):
    """An option was given a value it cannot take; raised at once, where it was declared.

    Who raises it: ``@component(...)``, ``Batch``, ``Retry``, ``Resources`` and the other
    options when they are built; a backend given a bad address or setting (a Ray cluster that
    does not answer, or refuses this process). The message names the option, the value given,
    and what is valid: change it to one of those.
    """


class InputError(LegatoError, ValueError):
    """Inputs given to a run do not match the pipeline's input ports (missing, unknown, wrong type).

    Who raises it: ``run``, ``map`` (and the CLI's), before any node of that item runs. In
    ``map`` it fails only the item it belongs to (``item`` is its index). What to do: give the
    inputs the pipeline declares (``pipeline.graph.inputs`` lists its ports and types).
    """

    def __init__(self, message: str, *, item: int | None = None) -> None:
        self.item = item
        prefix = f"item {item}: " if item is not None else ""
        super().__init__(prefix + message)


class OutputError(LegatoError, TypeError):
    """What an item gives back does not fit the pipeline's output ports (the mirror of
    :class:`InputError`): a value whose type is not the declared one, or, in the command line's
    JSON output, a value with no JSON form.

    Who raises it: a run, as the item's error, when the item's outputs are assembled (unless
    ``check_outputs=False``); ``legato map`` writes it as that item's failure line. Carries
    ``item``, ``output`` (the output's name), ``node`` (the node that produced the value, None
    when not known) and ``location``. What to do: fix the component, or the annotation it
    breaks; ``check_outputs=False`` skips the check. Not a :class:`ComponentError`: no call
    failed and nothing is retried (the same call would give the same value).
    """

    def __init__(
        self,
        message: str,
        *,
        item: int | None = None,
        output: str | None = None,
        node: str | None = None,
        location: str | None = None,
    ) -> None:
        self.item = item
        self.output = output
        self.node = node
        self.location = location
        self.detail = message
        prefix = f"item {item}: " if item is not None else ""
        super().__init__(prefix + message)

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword fields across pickling
        return (_rebuild_output_error,
                (self.detail, self.item, self.output, self.node, self.location))


def _rebuild_output_error(message: str, item: int | None, output: str | None,
                          node: str | None, location: str | None) -> OutputError:
    return OutputError(message, item=item, output=output, node=node, location=location)


class UsageError(LegatoError):
    """The ``legato`` command line itself is wrong: a malformed ``--input``, a missing data file,
    options that contradict each other.

    Who raises it: the CLI's commands, before anything runs. The command prints the message and
    exits with code 2. What to do: correct the command line as the message says
    (``legato COMMAND --help`` lists what each option takes).
    """


class ComponentError(LegatoError):
    """A component raised (or timed out) while serving a call.

    Carries ``node`` (the node's name in the graph), ``item`` (the index of the item in ``map``,
    0 for ``run``), ``attempt`` (1-based) and ``location`` (where the node was created). The
    component's own exception is chained as ``__cause__``, with its traceback.

    Who raises it: the engine, once the component's retry policy gives up on that item; other
    items go on. What to do: read the cause (a worker's traceback is chained under it as a
    :class:`RemoteTraceback`); fix the component, or retry on that error (``retries=``).
    """

    def __init__(
        self,
        message: str,
        *,
        node: str,
        item: int = 0,
        attempt: int = 1,
        location: str | None = None,
    ) -> None:
        self.node = node
        self.item = item
        self.attempt = attempt
        self.location = location
        self.detail = message
        where = f" ({location})" if location else ""
        super().__init__(
            f"node '{node}'{where} failed on item {item}, attempt {attempt}: {message}"
        )

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword fields across pickling
        return (
            _rebuild_component_error,
            (type(self), self.detail, self.node, self.item, self.attempt, self.location),
        )


def _rebuild_component_error(
    cls: type[ComponentError],
    message: str,
    node: str,
    item: int,
    attempt: int,
    location: str | None,
) -> ComponentError:
    return cls(message, node=node, item=item, attempt=attempt, location=location)


class ComponentTimeout(ComponentError):
    """A component call ran longer than its ``timeout``; the call was abandoned (or its worker
    process killed) and the retry policy applies.

    Who raises it: the engine, for the item whose call timed out (after the last attempt). What
    to do: raise the component's ``timeout``, or make the call faster.
    """


class BuildError(ComponentError):
    """A class component's constructor (``__init__``: loading a model) raised.

    Raised where the object is built (in the worker) and reported for the call that needed it.
    Once a constructor has failed (after its retries), every item that needs that component
    fails at once with this error, chained to the original, instead of building it again
    per item; the other branches of the graph go on. What to do: fix the constructor (a
    missing file, a wrong argument), then ``legato resume RUN --retry-failed``.
    """

    def __init__(self, message: str, *, component: str = "", node: str = "",
                 item: int = 0, attempt: int = 1, location: str | None = None) -> None:
        self.component = component
        super().__init__(message, node=node or component, item=item, attempt=attempt,
                         location=location)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_build_error, (self.detail, self.component, self.node, self.item,
                                       self.attempt, self.location))


def _rebuild_build_error(message: str, component: str, node: str, item: int, attempt: int,
                         location: str | None) -> BuildError:
    return BuildError(message, component=component, node=node, item=item, attempt=attempt,
                      location=location)


class RunError(LegatoError):
    """The run could not go on for a reason that is not one component's failure.

    Who raises it: the engine and the backends (a closed backend, outputs that could not be
    fetched, Ray's own failures translated at the boundary). The message says what failed.
    """


class RunCancelled(RunError):
    """The run was cancelled: Ctrl-C, ``close()`` on a ``map`` iterator, or a cancelled task.

    Everything in flight was stopped; results already returned stay valid. A backend reports a
    call that was cancelled under it (a Ray task cancelled) with this error too.
    """


class DeadlineExceeded(RunError):
    """An item's deadline (``deadline=`` seconds from its submission) passed before it finished.

    Raised for that item only: its waiting calls never start, its running calls are cancelled
    where the executor can (a process is killed, an async task cancelled; a thread cannot be
    stopped: it runs on and holds its slot until it ends). Other items are untouched. What to
    do: give the item more time, or make the pipeline faster (batching, more instances).
    """

    def __init__(self, message: str, *, item: int = 0, deadline: float = 0.0) -> None:
        self.item = item
        self.deadline = deadline
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (DeadlineExceeded, (self.args[0],), {"item": self.item, "deadline": self.deadline})


class WorkerDied(RunError):
    """The worker serving a call died: a worker process killed, crashed or out of memory, a Ray
    worker, actor or node lost (or a value the call needed lost with it).

    Who raises it: a backend, as the error of the call's outcome; the engine then applies the
    component's retry policy (the next attempt gets a fresh worker, a class component's object
    is built again) and, after the last attempt, fails the item with a
    :class:`ComponentError` whose ``__cause__`` is this error. What to do: look at why the worker
    died (memory, a native crash in the component); a backend author raises it whenever the
    place a call ran is gone, with the underlying error chained.
    """


class Stopped(RunError):
    """``legato map --on-error raise``: the first failed item stopped the run.

    Who raises it: the CLI's ``map``, with that item's error as the message; the run is
    recorded as stopped and ``legato resume`` continues it.
    """


class SimulationStalled(RunError):
    """A simulated run waits for a completion, but nothing could ever wake it.

    Who raises it: :meth:`legato.testing.simulate.SimulatedClock.idle`, when the run loop would
    block with no simulated call in flight and no timer set. It means a call was handed
    somewhere other than the simulated backend, or the run waits on a resource no running call
    will release. What to do: run the engine over the :class:`SimulatedBackend` sharing that
    clock, and check the capacity given to it.
    """


class StoreError(LegatoError):
    """The run store could not be opened, read or written.

    Raised when a database file is corrupt, locked past the wait, or from a newer legato; when
    a run id is unknown; when a blob cannot be written (a full disk) or is refused (a pickle the
    store did not write). The message names the database or blob and what to do. A run whose
    recording fails still hands every finished item's result to its caller; the error comes
    when the run ends, and whatever was recorded before it stays consistent.
    """


class Unstorable(StoreError):
    """The value has no stored form: it cannot be pickled (a lock, an open file), or must not be
    fetched to be stored (a Ray object reference).

    Who raises it: :mod:`legato.values` when encoding a value (for the store, or a cache key).
    The store catches it: the node is recorded without its value and is not cached, and the
    run goes on. What to do, if you meet it: return plain data, dataclasses or pydantic models
    from components whose outputs you want recorded.
    """


class RecordError(StoreError):
    """A stream's record file (``pipeline.stream(..., record=PATH)``) cannot be written, or
    read back by ``lg.replay(PATH)`` / ``legato replay``: the path cannot be opened, a line is
    not what legato writes, or an item's value was not recorded (it has no stored form without
    a pickle). The message names the file and line; record plain data, NumPy arrays or
    pydantic models to replay them."""


class LoadError(LegatoError):
    """A pipeline file or module failed while it was imported.

    Raised by :func:`load`; the message names the file and line where it failed and the error
    (``agent.py:12: ModuleNotFoundError: No module named 'sklearn'``), the original is chained.
    What to do: fix the file, or install what it imports.
    """


class SpecError(LoadError):
    """A ``FILE:PIPELINE`` spec names nothing that can be loaded.

    No such file or module, no such pipeline in it, or an object that is not a pipeline. The
    message lists the pipelines the file does define, when it could be imported.
    """


class RemoteTraceback(LegatoError):
    """Never raised: the text of a traceback from another process (a worker process, a Ray
    worker), set as the ``__cause__`` of the component's own exception so that the traceback
    printed for it shows where, in the worker, it was raised."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.text}\"\"\""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``kill PID``, a container or a job scheduler stopping the command).

    Raised in the main thread by the handler :func:`legato.cli.common.terminable` installs, as
    Ctrl-C raises :class:`KeyboardInterrupt`, of which it is a kind (not a LegatoError:
    ``except Exception`` must not swallow it): whatever cleans up after Ctrl-C (the run
    cancels what is in flight, stops worker processes, records what is done and ends as
    ``cancelled``, so ``legato resume`` continues it) cleans up after SIGTERM too. The command
    then exits 143 (128 + SIGTERM), as a process killed by SIGTERM reports itself. The run is
    recorded as ``interrupted`` (``run_status``), not ``cancelled``: nobody asked it to stop.
    """

    run_status = "interrupted"


__all__ = [
    "BuildError",
    "ComponentError",
    "ComponentTimeout",
    "ConfigError",
    "DeadlineExceeded",
    "GraphError",
    "InputError",
    "LegatoError",
    "LoadError",
    "OutputError",
    "Problem",
    "RecordError",
    "RemoteTraceback",
    "RunCancelled",
    "RunError",
    "SimulationStalled",
    "SpecError",
    "Stopped",
    "StoreError",
    "Terminated",
    "TracingError",
    "Unstorable",
    "UsageError",
    "WorkerDied",
]
