"""What a server is told: :class:`ServeOptions` (the same from Python, the command line and a
config file) and :func:`load_config`, which reads ``legato.yaml``.

A config file declares the pipelines (``FILE:PIPELINE`` specs, relative to the file) and any of
the options, by the names the options have here (``max_queue``, ``api_key_file``...). It is
validated with pydantic; a bad file gets a :class:`~legato.errors.ConfigError` naming the file,
the line (from the YAML node marks) and the valid keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from legato.errors import ConfigError

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def default_max_queue() -> int:
    """A few times the engine's concurrency: 4 x the CPUs this process may use, at least 16."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(16, 4 * cpus)


class ServeOptions(BaseModel):
    """The server's options; every one has a ``legato serve --flag`` of the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_queue: int = Field(default_factory=default_max_queue, ge=1)
    """Items of one pipeline admitted at once (running or waiting); past it, 429."""
    max_timeout: float | None = Field(None, gt=0)
    """The longest deadline a request may ask for (seconds); also the deadline of a request
    that asks for none. None: no cap, no default deadline."""
    priority_header: str | None = None
    """A header whose integer value is the item's priority (higher first)."""
    api_keys: tuple[str, ...] = ()
    api_key_file: Path | None = None
    open_docs: bool = False
    """Serve /docs, /openapi.json and /metrics without a key."""
    insecure: bool = False
    """Bind to a non-loopback host even though no API key is configured."""
    drain_timeout: float = Field(30.0, ge=0)
    """On SIGTERM, how long in-flight requests may take to finish before they are cancelled."""
    store: str | None = None
    """Record the service as one run (each request an item): a store URL or path, or
    ``default`` for the default store."""
    resources: dict[str, float] = Field(default_factory=dict)
    debug: bool = False
    """Problem responses of a failed component carry its traceback."""
    ui: bool = True
    """Mount the web UI at /ui (behind the same keys); its live view of the service costs
    the engine an event per node and item (benchmark B13-ui)."""


class ServeConfig(ServeOptions):
    """A ``legato.yaml`` file: the pipelines to serve and the options."""

    pipelines: list[str] = Field(min_length=1)


def load_config(path: str | Path) -> ServeConfig:
    """Read and validate a config file; relative paths in it are relative to the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of keys to values "
                          f"(valid keys: {', '.join(_valid_keys())})")
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, root)) from None
    base = path.resolve().parent
    pipelines = [_relative(spec, base) for spec in config.pipelines]
    key_file = config.api_key_file
    if key_file is not None and not key_file.is_absolute():
        key_file = base / key_file
    return config.model_copy(update={"pipelines": pipelines, "api_key_file": key_file})


def _valid_keys() -> list[str]:
    return sorted(ServeConfig.model_fields)


def _relative(spec: str, base: Path) -> str:
    where, sep, name = spec.rpartition(":")
    if not sep or not (where.endswith(".py") or "/" in where):
        return spec  # a dotted module
    path = Path(where)
    return f"{path if path.is_absolute() else base / path}:{name}"


def _describe(exc: ValidationError, path: Path, root: Any) -> str:
    lines = [f"{path}: the config file is not valid:"]
    for error in exc.errors():
        loc = tuple(error["loc"])
        line = _line(root, loc)
        where = f"{path}:{line}" if line is not None else str(path)
        key = ".".join(str(part) for part in loc) or "(top)"
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{key}'; valid keys: {', '.join(_valid_keys())}"
        else:
            message = f"'{key}': {error['msg']}"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _line(node: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (a key's line for a missing value)."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(
                node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


__all__ = ["LOOPBACK", "ServeConfig", "ServeOptions", "default_max_queue", "load_config"]
