"""Ray's errors as legato reports them: one table, one translation, at the Ray boundary.

Every class in ``ray.exceptions`` is mapped here, by name (Ray is imported on first use only),
to the legato error it becomes; a subclass that is not named takes its nearest named base's
entry. :func:`translate` builds that error and chains Ray's as ``__cause__``. A test walks
``ray.exceptions`` and fails on any class the table does not cover (other than through
``RayError``, the root, whose entry is the fallback): a new Ray error is a decision, not an
accident.

What becomes what:

- the place a call ran is gone (a worker, actor or node died; a value it held was lost with
  it): :class:`~legato.errors.WorkerDied`; the component's retry policy applies;
- the call was cancelled under us: :class:`~legato.errors.RunCancelled`;
- the cluster is set up wrongly (authentication, a runtime environment that cannot be built):
  :class:`~legato.errors.ConfigError`;
- anything else Ray could not do (schedule, store, send, reach its own services):
  :class:`~legato.errors.RunError`.

A component's own exception never passes through here: it comes back from the worker as itself
(see :mod:`legato.backends.ray_remote`), and the engine wraps it in a ComponentError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from legato.errors import ConfigError, LegatoError, RunCancelled, RunError, WorkerDied


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one of Ray's errors becomes: the legato error class, and what the message says
    happened (Ray's own first line follows it)."""

    error: type[LegatoError]
    says: str


_DIED = "the Ray worker running the call died"
_ACTOR = "the Ray actor serving the call died"
_NODE = "a Ray node running the call died"
_LOST = "a value the call needed was lost from the Ray cluster (the worker holding it died)"
_PLACE = ("Ray cannot place the call; check that the cluster has the resources the component "
          "declares")

#: Each ``ray.exceptions`` class, by name, and what it becomes.
RAY_ERRORS: Mapping[str, Mapped] = {
    # the place a call ran is gone
    "RayActorError": Mapped(WorkerDied, _ACTOR),
    "ActorDiedError": Mapped(WorkerDied, _ACTOR),
    "ActorUnavailableError": Mapped(WorkerDied, "the Ray actor serving the call is unreachable"),
    "AsyncioActorExit": Mapped(WorkerDied, "the Ray actor serving the call exited"),
    "WorkerCrashedError": Mapped(WorkerDied, _DIED),
    "OutOfMemoryError": Mapped(WorkerDied, "the Ray worker running the call was killed: the "
                               "node ran out of memory"),
    "NodeDiedError": Mapped(WorkerDied, _NODE),
    "LocalRayletDiedError": Mapped(WorkerDied, "this machine's Ray raylet died"),
    "ObjectLostError": Mapped(WorkerDied, _LOST),  # and its kin: owner died, freed, ...
    "OwnerDiedError": Mapped(WorkerDied, _LOST),
    "ObjectFetchTimedOutError": Mapped(WorkerDied, _LOST),
    "ObjectFreedError": Mapped(WorkerDied, _LOST),
    "ObjectReconstructionFailedError": Mapped(WorkerDied, _LOST),
    "ReferenceCountingAssertionError": Mapped(WorkerDied, _LOST),
    # cancelled under us
    "TaskCancelledError": Mapped(RunCancelled, "the call was cancelled"),
    # the cluster is set up wrongly
    "AuthenticationError": Mapped(ConfigError, "the Ray cluster refused this process's "
                                  "credentials"),
    "RuntimeEnvSetupError": Mapped(ConfigError, "Ray could not set up the call's runtime "
                                   "environment"),
    # anything else Ray could not do
    "RayError": Mapped(RunError, "Ray failed"),
    "RaySystemError": Mapped(RunError, "Ray's own system failed"),
    "RayTaskError": Mapped(RunError, "Ray could not run the call"),
    "UserCodeException": Mapped(RunError, "Ray could not run the call"),
    "UnserializableException": Mapped(RunError, "the call's error could not be read back "
                                      "from Ray"),
    "CrossLanguageError": Mapped(RunError, "Ray could not run the call"),
    "GetTimeoutError": Mapped(RunError, "a value took too long to come back from Ray"),
    "RpcError": Mapped(RunError, "a request to the Ray cluster failed"),
    "ObjectStoreFullError": Mapped(RunError, "the Ray object store is full; free values or "
                                   "give the cluster more object store memory"),
    "OutOfDiskError": Mapped(RunError, "a Ray node ran out of disk for spilled values"),
    "PlasmaObjectNotAvailable": Mapped(RunError, "a value is not available in the Ray object "
                                       "store"),
    "ObjectRefStreamEndOfStreamError": Mapped(RunError, "a Ray stream of values ended"),
    "OufOfBandObjectRefSerializationException": Mapped(RunError, "a Ray object reference "
                                                       "was serialised where it cannot be"),
    "PendingCallsLimitExceeded": Mapped(RunError, "a Ray actor has too many calls waiting"),
    "ActorAlreadyExistsError": Mapped(RunError, "a Ray actor of that name already exists"),
    "ActorHandleNotFoundError": Mapped(RunError, "a Ray actor's handle was not found"),
    "TaskUnschedulableError": Mapped(RunError, _PLACE),
    "ActorUnschedulableError": Mapped(RunError, _PLACE),
    "TaskPlacementGroupRemoved": Mapped(RunError, "the Ray placement group of the call was "
                                        "removed"),
    "ActorPlacementGroupRemoved": Mapped(RunError, "the Ray placement group of the actor was "
                                         "removed"),
    "RayChannelError": Mapped(RunError, "a Ray channel failed"),
    "RayChannelTimeoutError": Mapped(RunError, "a Ray channel timed out"),
    "RayCgraphCapacityExceeded": Mapped(RunError, "a Ray compiled graph is over capacity"),
    "RayDirectTransportError": Mapped(RunError, "a Ray direct transport failed"),
    "StreamingGeneratorReplayInconsistentError": Mapped(RunError, "a Ray streaming generator "
                                                        "replayed inconsistently"),
}

#: What an error not from Ray (or from a Ray newer than the table) becomes.
FALLBACK = Mapped(RunError, "Ray failed")


def mapping_of(kind: type[BaseException]) -> Mapped | None:
    """The table's entry for ``kind``: its own, else its nearest base's among Ray's classes
    (None when neither it nor any base is one of Ray's that the table names)."""
    for base in kind.__mro__:
        if base.__module__.startswith("ray.") or base.__module__ == "ray":
            found = RAY_ERRORS.get(base.__name__)
            if found is not None:
                return found
    return None


def translate(exc: BaseException) -> LegatoError:
    """One of Ray's errors as legato reports it, with ``exc`` chained as its ``__cause__``.

    The message is the table's ``says``, then Ray's class and the first line of its message
    (Ray's messages run to pages; the whole is in the cause).
    """
    mapped = mapping_of(type(exc)) or FALLBACK
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the error it wraps
    shown = cause if isinstance(cause, BaseException) else exc
    text = str(shown).strip()
    first = text.splitlines()[0] if text else ""
    detail = f"{type(shown).__name__}: {first}" if first else type(shown).__name__
    error = mapped.error(f"{mapped.says} ({detail})")
    error.__cause__ = exc
    return error


__all__ = ["FALLBACK", "RAY_ERRORS", "Mapped", "mapping_of", "translate"]
