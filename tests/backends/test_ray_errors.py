"""Ray's errors become legato's by one table at the Ray boundary: every class in
``ray.exceptions`` is covered, and each translation keeps Ray's error as its cause. No Ray
cluster needed (Ray's exception classes are built by hand)."""

from __future__ import annotations

import inspect

import pytest

import legato as lg
from legato.backends.ray_errors import FALLBACK, RAY_ERRORS, mapping_of, translate

ray_exceptions = pytest.importorskip("ray.exceptions")


def ray_error_classes() -> list[type[BaseException]]:
    """Every exception class that ``ray.exceptions`` defines."""
    return sorted(
        (value for value in vars(ray_exceptions).values()
         if inspect.isclass(value) and issubclass(value, BaseException)
         and value.__module__ == ray_exceptions.__name__),
        key=lambda kind: kind.__name__)


def covered(kind: type[BaseException]) -> bool:
    """Named in the table, or a subclass of one named there other than the root ``RayError``
    (whose entry is the runtime fallback, not a decision about this class)."""
    return any(base.__module__ == ray_exceptions.__name__ and base.__name__ in RAY_ERRORS
               and (base is kind or base is not ray_exceptions.RayError)
               for base in kind.__mro__)


def test_the_walk_finds_rays_error_classes() -> None:
    names = {kind.__name__ for kind in ray_error_classes()}
    assert {"RayError", "RayActorError", "WorkerCrashedError", "TaskCancelledError"} <= names


@pytest.mark.parametrize("kind", ray_error_classes(), ids=lambda kind: kind.__name__)
def test_every_ray_error_class_is_mapped(kind: type[BaseException]) -> None:
    assert covered(kind), (f"ray.exceptions.{kind.__name__} is not in RAY_ERRORS "
                           "(legato/backends/ray_errors.py): decide what it becomes")
    assert mapping_of(kind) is not None


def test_the_table_names_only_rays_classes_and_maps_to_legato_errors() -> None:
    names = {kind.__name__ for kind in ray_error_classes()}
    assert set(RAY_ERRORS) <= names
    for mapped in RAY_ERRORS.values():
        assert issubclass(mapped.error, lg.LegatoError)


@pytest.mark.parametrize(("error", "becomes"), [
    (lambda: ray_exceptions.WorkerCrashedError(), lg.WorkerDied),
    (lambda: ray_exceptions.RayActorError(), lg.WorkerDied),
    (lambda: ray_exceptions.ActorDiedError(), lg.WorkerDied),
    (lambda: ray_exceptions.NodeDiedError("node 1 died"), lg.WorkerDied),
    (lambda: ray_exceptions.OwnerDiedError("ab" * 14, None, "site"), lg.WorkerDied),
    (lambda: ray_exceptions.TaskCancelledError(), lg.RunCancelled),
    (lambda: ray_exceptions.RuntimeEnvSetupError("pip failed"), lg.ConfigError),
    (lambda: ray_exceptions.ObjectStoreFullError("full"), lg.RunError),
    (lambda: ray_exceptions.RaySystemError("gcs gone"), lg.RunError),
])
def test_translation_gives_the_legato_error_and_chains_rays(
    error: object, becomes: type[lg.LegatoError]
) -> None:
    original = error()  # type: ignore[operator]
    translated = translate(original)
    assert type(translated) is becomes
    assert translated.__cause__ is original
    assert type(original).__name__ in str(translated)


def test_a_subclass_the_table_does_not_name_takes_its_bases_entry() -> None:
    class Newer(ray_exceptions.WorkerCrashedError):  # type: ignore[misc]
        pass

    translated = translate(Newer())
    assert isinstance(translated, lg.WorkerDied)


def test_a_task_error_names_the_error_it_wraps() -> None:
    cause = ValueError("bad shape")
    original = ray_exceptions.RayTaskError("body", "Traceback ...", cause)
    translated = translate(original)
    assert isinstance(translated, lg.RunError)
    assert "ValueError: bad shape" in str(translated)
    assert translated.__cause__ is original


def test_an_error_not_from_ray_gets_the_fallback_with_its_cause() -> None:
    original = OSError("connection reset")
    translated = translate(original)
    assert type(translated) is FALLBACK.error
    assert "OSError: connection reset" in str(translated)
    assert translated.__cause__ is original


def test_a_dead_worker_is_retried_then_reported_as_component_error_caused_by_worker_died(
) -> None:
    """What the engine makes of a translated error: a WorkerDied outcome is retried like any
    call's failure and, after the last attempt, is the ComponentError's cause."""
    from legato.engine.backend import Call, Done, Outcome
    from legato.testing.simulate import SimulatedBackend, SimulatedClock

    class Dying(SimulatedBackend):
        def submit(self, call: Call, done: Done) -> None:
            done(call, Outcome(error=translate(ray_exceptions.WorkerCrashedError())))

    @lg.component(retries=2)
    def work(x: int) -> int:
        return x

    @lg.pipeline
    def pipe(x: int) -> int:
        return work(x)

    clock = SimulatedClock()
    with (lg.Engine(Dying(clock, lambda call: 0.0), clock=clock) as engine,
          pytest.raises(lg.ComponentError) as raised):
        pipe.run(x=1, engine=engine)
    assert raised.value.attempt == 3  # retries=2: two more attempts after the first
    assert isinstance(raised.value.__cause__, lg.WorkerDied)
    assert isinstance(raised.value.__cause__.__cause__, ray_exceptions.WorkerCrashedError)
