"""What ``legato run``, ``map`` and ``resume`` take besides the pipeline: inputs (``--input``
or a JSON object on stdin), where calls run (``--backend``, ``--address``), custom resources
(``--resources``), the cache (``--cache``), traces (``--otel``, shared with ``stream`` and
``serve``), and the files results and events go to; each parsed into what the Python API
takes, a malformed one refused as a :class:`UsageError`.
"""

from __future__ import annotations

import enum
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from legato.cli.common import UsageError
from legato.engine import Engine
from legato.errors import InputError
from legato.pipeline import default_engine, ray_engine


def parse_inputs(given: list[str]) -> dict[str, Any]:
    """``["x=3", "doc=@doc.json"]`` -> ``{"x": "3", "doc": <doc.json parsed>}``.

    A value is a string (the pipeline coerces it to its input's type); ``@FILE`` reads JSON from
    FILE; ``@@text`` is the string ``@text``.
    """
    inputs: dict[str, Any] = {}
    for raw in given:
        name, equals, value = raw.partition("=")
        name = name.strip()
        if not equals or not name.isidentifier():
            raise UsageError(f"--input expects NAME=VALUE, e.g. --input x=3; got {raw!r}")
        if name in inputs:
            raise UsageError(f"--input {name} is given twice")
        inputs[name] = _input_value(name, value)
    return inputs


def _input_value(name: str, value: str) -> Any:
    if value.startswith("@@"):
        return value[1:]
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--input {name}=@{path}: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input {name}=@{path}: {path}:{exc.lineno}: not valid JSON: "
                         f"{exc.msg}") from None


def stdin_inputs() -> dict[str, Any]:
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    text = sys.stdin.read()
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"stdin:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InputError(f"stdin must hold a JSON object of input names to values, got "
                         f"{type(value).__name__}")
    return value


BackendName = Annotated[str, typer.Option(
    "--backend", metavar="NAME",
    help="Where calls run: local (this machine) or ray (a Ray cluster, see --address).")]
Address = Annotated[str | None, typer.Option(
    "--address", metavar="ADDRESS",
    help="With --backend ray, the cluster to join: auto, HOST:PORT or ray://HOST:PORT "
    "(default: a local Ray instance, stopped when the command ends).", show_default=False)]


def engine_for(backend: str, address: str | None) -> Engine:
    """The engine ``--backend`` and ``--address`` name."""
    if backend == "local":
        if address is not None:
            raise UsageError("--address names a Ray cluster; give --backend ray with it")
        return default_engine()
    if backend != "ray":
        raise UsageError(f"--backend must be local or ray, got {backend!r}")
    return ray_engine(address)


def parse_resources(given: list[str] | None) -> dict[str, float]:
    """``["asr=1", "tpu=0.5"]`` -> ``{"asr": 1.0, "tpu": 0.5}``: custom resources the run
    declares (the capacity a component's ``resources={"asr": 1}`` is checked and admitted
    against)."""
    declared: dict[str, float] = {}
    for raw in given or []:
        name, equals, value = raw.partition("=")
        name = name.strip()
        try:
            amount = float(value)
        except ValueError:
            amount = math.nan
        if not equals or not name or not math.isfinite(amount) or amount < 0:
            raise UsageError(f"--resources expects NAME=AMOUNT with AMOUNT a number >= 0, e.g. "
                             f"--resources asr=1; got {raw!r}")
        if name in declared:
            raise UsageError(f"--resources {name} is given twice")
        declared[name] = amount
    return declared


class CacheChoice(enum.StrEnum):
    """``--cache``: which components answer from the store's cache."""

    default = "default"  # those declared cache=True
    all = "all"
    none = "none"

    def argument(self) -> bool | Literal["all"]:
        """The ``cache=`` argument of ``Pipeline.map`` and ``run``."""
        if self is CacheChoice.all:
            return "all"
        return self is CacheChoice.default


Resources = Annotated[list[str] | None, typer.Option(
    "--resources", metavar="NAME=AMOUNT",
    help="Declare a custom resource and its capacity, e.g. asr=1 for components declared "
    "resources={'asr': 1} (repeat for each).", show_default=False)]
Cache = Annotated[CacheChoice, typer.Option(
    "--cache", help="Answer calls from the store's cache: for components declared cache=True "
    "(default), for every component (all), or for none.")]


Output = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Where to write one JSON line per item (default: stdout).")]
Events = Annotated[Path | None, typer.Option(
    "--events", help="Write node executions as JSON lines to this file.")]
Progress = Annotated[bool | None, typer.Option(
    "--progress/--no-progress", help="A progress bar on stderr (default: on a terminal).",
    show_default=False)]


Otel = Annotated[bool, typer.Option(
    "--otel", envvar="LEGATO_OTEL",
    help="Send OpenTelemetry traces of the runs: where to, the standard OTEL_* environment "
    "variables say (OTLP to localhost:4318 by default). Needs pip install 'legato[otel]'. "
    "Also LEGATO_OTEL=1.")]


@contextmanager
def traced(engine: Engine, otel: bool) -> Iterator[None]:
    """While inside, ``engine``'s runs are traced when ``--otel`` asks (see
    :mod:`legato.observe.otel`); spans still buffered are sent on the way out."""
    if not otel:
        yield
        return
    from legato.observe.otel import enable

    disable = enable(engine)
    try:
        yield
    finally:
        disable()
