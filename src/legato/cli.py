"""The ``legato`` command line: run, map, check and draw a pipeline named by ``FILE:PIPELINE``.

Thin over the public API: each command loads a pipeline (:mod:`legato.loader`) and calls what a
Python user would call (``run``, the engine's ``start``, ``check``, ``to_mermaid``).

Exit codes: 0 done; 1 a failure (a problem the check found, an input that does not fit, a failed
item, a file that fails to import); 2 a usage error (bad arguments, nothing at FILE:PIPELINE);
130 cancelled by Ctrl-C, after in-flight calls were cancelled and worker processes stopped.
Errors print one ``error:`` message on stderr; ``legato --debug ...`` adds the traceback.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePath
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import TyperException

from legato import __version__
from legato.engine import Failure
from legato.errors import ComponentError, InputError, LegatoError, SpecError
from legato.loader import load
from legato.pipeline import Pipeline, default_engine

app = typer.Typer(
    name="legato",
    help="Run, map, check and draw legato pipelines. A pipeline is named FILE:PIPELINE "
    "(path/to/file.py:agent) or package.module:PIPELINE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

Target = Annotated[str, typer.Argument(
    metavar="FILE:PIPELINE", help="path/to/file.py:name or package.module:name")]


class UsageError(Exception):
    """The command line itself is wrong (exit 2): a malformed --input, a missing data file."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Global options, given before the command."""

    debug: bool = False


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"legato {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an error, show the full traceback.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = Settings(debug=debug)


# -- errors ------------------------------------------------------------------------------------


def error(message: str) -> None:
    """Print ``error: message`` on stderr (``error:`` in red on a terminal)."""
    _stderr.print(Text.assemble(("error:", "bold red"), " ", message))


@contextmanager
def _reporting(ctx: typer.Context) -> Iterator[None]:
    """Turn what a command raises into a message and an exit code (module docstring)."""
    debug = _settings(ctx).debug
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        _stderr.print("cancelled", style="yellow")
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader of stdout went away (`legato map ... | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(1) from None
    except OSError as exc:  # a file the command line names: data, output, events
        if debug:
            traceback.print_exc()
        error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        raise typer.Exit(1) from None
    except Exception as exc:
        if debug:
            traceback.print_exc()
        usage = isinstance(exc, UsageError | SpecError)
        if isinstance(exc, LegatoError | UsageError):
            error(str(exc))
        else:
            hint = "" if debug else " (legato --debug ... shows the traceback)"
            error(f"{type(exc).__name__}: {exc}{hint}")
        raise typer.Exit(2 if usage else 1) from None


# -- JSON out ----------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data.

    Mappings become objects (keys as strings), NamedTuples, dataclasses and pydantic models
    objects of their fields, lists, tuples and sets lists, numpy arrays nested lists and numpy
    scalars numbers, dates ISO strings, enums their values, paths strings; anything else its
    ``repr``.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(jsonable(k)): jsonable(v)
                for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: jsonable(getattr(value, name)) for name in value._fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if type(value).__module__.partition(".")[0] == "numpy" and hasattr(value, "tolist"):
        return jsonable(value.tolist())
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return dump(mode="json")
        except Exception:
            return repr(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return repr(value)
    return repr(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of ``jsonable(value)``."""
    return json.dumps(jsonable(value), indent=indent, ensure_ascii=False)


# -- run ---------------------------------------------------------------------------------------


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


def _stdin_inputs() -> dict[str, Any]:
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


@app.command()
def run(
    ctx: typer.Context,
    target: Target,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", metavar="NAME=VALUE",
        help="An input (repeat for each). Without any, a JSON object is read from stdin. "
        "VALUE is coerced to the input's type; @FILE reads JSON from FILE.")] = None,
) -> None:
    """Run the pipeline on one item and print its result as JSON."""
    with _reporting(ctx):
        pipeline = load(target)
        values = parse_inputs(inputs) if inputs else _stdin_inputs()
        try:
            result = pipeline.run(values)
        except InputError as exc:
            if values:
                raise
            raise InputError(f"{exc}; give inputs as --input NAME=VALUE or as a JSON object on "
                             "stdin") from exc
        sys.stdout.write(dumps(result, indent=2) + "\n")
        sys.stdout.flush()


# -- map ---------------------------------------------------------------------------------------


class OnError(enum.StrEnum):
    """What ``legato map`` does with a failed item."""

    collect = "collect"
    skip = "skip"
    raise_ = "raise"


@dataclasses.dataclass(frozen=True)
class Malformed:
    """A data line that is not a JSON object; the engine fails it as an item (not a mapping),
    which keeps item indices equal to line order, and the CLI reports this message."""

    message: str


class DataLines:
    """Items from JSON lines, one object of input names to values per line; blank lines skip.

    A line that is not a JSON object (or not UTF-8) becomes a :class:`Malformed` item.
    ``forget(index)`` gives the line number of item ``index`` once (so memory stays flat).
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name
        self._lines: dict[int, int] = {}

    def __iter__(self) -> Iterator[Any]:
        index = 0
        for number, raw in enumerate(self.stream, 1):
            if not raw.strip():
                continue
            self._lines[index] = number
            index += 1
            yield self._parse(raw, number)

    def _parse(self, raw: bytes, number: int) -> Any:
        where = f"{self.name}:{number}"
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Malformed(f"{where}: not UTF-8 text: {exc.reason} at byte {exc.start}")
        except json.JSONDecodeError as exc:
            return Malformed(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})")
        if not isinstance(value, dict):
            return Malformed(f"{where}: expected a JSON object of input names to values, got "
                             f"{type(value).__name__}")
        return value

    def forget(self, index: int) -> int:
        """The line number of item ``index``, forgotten after this call."""
        return self._lines.pop(index)


def _failure_record(failure: Failure, data: DataLines, line: int) -> dict[str, Any]:
    error = failure.error
    node = None
    if isinstance(failure.inputs, Malformed):
        message = failure.inputs.message
    elif isinstance(error, InputError):
        message = f"{data.name}:{line}: {str(error).removeprefix(f'item {error.item}: ')}"
    else:
        message = str(error)
        node = error.node if isinstance(error, ComponentError) else None
    return {"index": failure.index, "error": message, "node": node, "line": line}


def _count_items(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for raw in stream if raw.strip())


@app.command("map")
def map_(
    ctx: typer.Context,
    target: Target,
    data: Annotated[str, typer.Argument(
        metavar="DATA.jsonl", help="One JSON object of inputs per line; - reads stdin.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write one JSON line per item (default: stdout).")] = None,
    window: Annotated[int, typer.Option(min=1, help="At most this many items in flight.")] = 256,
    on_error: Annotated[OnError, typer.Option(
        "--on-error", help="A failed item: written with its error (collect), left out (skip), "
        "or stops the run (raise).")] = OnError.collect,
    events: Annotated[Path | None, typer.Option(
        "--events", help="Write node executions as JSON lines to this file.")] = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress", help="A progress bar on stderr (default: on a terminal).",
        show_default=False)] = None,
) -> None:
    """Run the pipeline on every line of a JSON-lines file; write one result line per item.

    Each output line is {"index": i, "output": ...} or {"index": i, "error": ..., "node": ...,
    "line": n}, in input order, written as soon as it is known. With --on-error collect (the
    default) the exit code is 1 when any item failed.
    """
    with _reporting(ctx), ExitStack() as stack:
        pipeline = load(target)
        if data != "-" and not Path(data).is_file():
            raise UsageError(f"no such data file: {data}")
        engine = default_engine()
        pipeline.check(engine=engine)
        source = sys.stdin.buffer if data == "-" else stack.enter_context(open(data, "rb"))
        lines = DataLines(source, "stdin" if data == "-" else data)
        out = sys.stdout if output is None else stack.enter_context(
            open(output, "w", encoding="utf-8"))
        started = engine.start(pipeline.graph, lines, window=window, on_error="collect")
        if events is not None:
            from legato.observe.events_file import EventsFile

            stream = stack.enter_context(open(events, "w", encoding="utf-8", buffering=1))
            stack.callback(engine.bus.subscribe(EventsFile(stream, run=started.id)))
        show = _stderr.is_terminal if progress is None else progress
        if show:
            from legato.observe.progress import with_progress

            total = None if data == "-" else _count_items(Path(data))
            results = with_progress(started, engine.bus, total=total, label=pipeline.name)
        else:
            results = started.results()
        stack.callback(_close, results)  # on any exit: cancels what is still in flight
        done, failed = _write_results(results, lines, out, on_error)
        _stderr.print(f"{done} done, {failed} failed")
        if failed and on_error is OnError.collect:
            raise typer.Exit(1)


def _close(results: Iterator[Any]) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()


def _write_results(
    results: Iterator[Any], lines: DataLines, out: IO[str], on_error: OnError
) -> tuple[int, int]:
    done = failed = 0
    for index, result in enumerate(results):
        line = lines.forget(index)
        if not isinstance(result, Failure):
            out.write(json.dumps({"index": index, "output": jsonable(result)},
                                 ensure_ascii=False) + "\n")
            out.flush()
            done += 1
            continue
        failed += 1
        record = _failure_record(result, lines, line)
        if on_error is OnError.raise_:
            raise _Stopped(record["error"])
        if on_error is OnError.collect:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    return done, failed


class _Stopped(LegatoError):
    """``--on-error raise``: the first failed item stopped the run."""


# -- check and graph ---------------------------------------------------------------------------


@app.command()
def check(ctx: typer.Context, target: Target) -> None:
    """Check the pipeline's graph; print every problem found (exit 1), or ok."""
    with _reporting(ctx):
        pipeline = load(target)
        pipeline.check()
        count = len(pipeline.graph)
        typer.echo(f"ok: pipeline '{pipeline.name}' ({count} node{'s' if count != 1 else ''})")


class GraphFormat(enum.StrEnum):
    """What ``legato graph`` draws."""

    mermaid = "mermaid"
    dot = "dot"
    json = "json"
    svg = "svg"
    png = "png"


_SUFFIXES = {".mmd": GraphFormat.mermaid, ".mermaid": GraphFormat.mermaid,
             ".dot": GraphFormat.dot, ".gv": GraphFormat.dot, ".json": GraphFormat.json,
             ".svg": GraphFormat.svg, ".png": GraphFormat.png}


@app.command()
def graph(
    ctx: typer.Context,
    target: Target,
    fmt: Annotated[GraphFormat | None, typer.Option(
        "--format", "-f", help="Default: from the -o suffix, else mermaid.",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Draw the pipeline's graph: Mermaid, Graphviz DOT, JSON, or SVG/PNG (needs Graphviz)."""
    with _reporting(ctx):
        chosen = fmt or (_SUFFIXES.get(output.suffix.lower()) if output else None)
        chosen = chosen or GraphFormat.mermaid
        pipeline = load(target)
        if chosen in (GraphFormat.svg, GraphFormat.png):
            if output is None and chosen is GraphFormat.png and sys.stdout.isatty():
                raise UsageError("PNG is binary; write it to a file: -o graph.png")
            drawing = render(pipeline, chosen)
        else:
            drawing = _text(pipeline, chosen).encode()
        if output is None:
            sys.stdout.buffer.write(drawing)
            sys.stdout.flush()
        else:
            output.write_bytes(drawing)


def _text(pipeline: Pipeline, chosen: GraphFormat) -> str:
    if chosen is GraphFormat.dot:
        return pipeline.to_dot()
    if chosen is GraphFormat.json:
        return pipeline.to_json() + "\n"
    return pipeline.to_mermaid()


def render(pipeline: Pipeline, chosen: GraphFormat) -> bytes:
    """SVG or PNG bytes from Graphviz's ``dot`` program."""
    program = shutil.which("dot")
    if program is None:
        raise LegatoError(
            f"--format {chosen.value} needs Graphviz's 'dot' program, which is not on PATH; "
            "install Graphviz (apt-get install graphviz, brew install graphviz) or use "
            "--format mermaid"
        )
    done = subprocess.run([program, f"-T{chosen.value}"], input=pipeline.to_dot().encode(),
                          capture_output=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        raise LegatoError(f"Graphviz 'dot -T{chosen.value}' failed (exit {done.returncode}): "
                          f"{reason}")
    return done.stdout


def main() -> None:
    """The ``legato`` console script."""
    app()


if __name__ == "__main__":
    main()
