"""``legato.extend``: the namespace for backend and subscriber authors. Every name importable,
documented, and the whole backend protocol and every event there; ``import legato`` does not
import it."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

import legato.extend as extend
from legato import errors
from legato.engine import backend, clock, events


@pytest.mark.parametrize("name", extend.__all__)
def test_each_name_is_importable_and_named_in_the_module_docstring(name: str) -> None:
    assert getattr(extend, name) is not None
    assert f"`{name}`" in (extend.__doc__ or ""), f"say what {name} is for in extend's docstring"


@pytest.mark.parametrize("name", [name for name in extend.__all__
                                  if inspect.isclass(getattr(extend, name))
                                  or inspect.isfunction(getattr(extend, name))])
def test_each_class_and_function_has_its_own_docstring(name: str) -> None:
    value = getattr(extend, name)
    doc = value.__doc__ or ""
    generated = f"{name}(" if dataclasses.is_dataclass(value) else None  # dataclass's default
    assert doc.strip(), f"{name} has no docstring"
    assert generated is None or not doc.startswith(generated), f"{name} has no docstring"


def test_the_backend_protocol_and_the_clocks_are_there() -> None:
    assert extend.Backend is backend.Backend
    assert extend.Call is backend.Call
    assert extend.Outcome is backend.Outcome
    assert extend.Values is backend.Values
    assert extend.Clock is clock.Clock
    assert extend.ManualClock is clock.ManualClock
    assert extend.MonotonicClock is clock.MonotonicClock
    assert extend.EventBus is events.EventBus
    assert extend.WorkerDied is errors.WorkerDied


def test_every_event_class_is_there() -> None:
    """A new event added to the engine must be added here too."""
    event_classes = {name for name, value in vars(events).items()
                     if inspect.isclass(value) and dataclasses.is_dataclass(value)
                     and value.__module__ == events.__name__}
    assert event_classes
    assert event_classes <= set(extend.__all__)
    assert set(typing_args(events.Event)) == {getattr(events, n) for n in event_classes}


def typing_args(union: object) -> tuple[object, ...]:
    return tuple(getattr(union, "__args__", ()))


def test_every_protocol_verb_is_documented() -> None:
    for verb in ("capacity", "gpus", "submit", "cancel", "evict", "close"):
        assert hasattr(extend.Backend, verb)
        assert f"``{verb}(" in (extend.__doc__ or "")


def test_import_legato_does_not_import_extend() -> None:
    code = "import sys, legato; print('legato.extend' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
