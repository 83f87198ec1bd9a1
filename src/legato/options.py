"""Component options: what a component declares besides its code, validated where declared.

``Resources`` (cpus, gpus, gpu memory, memory, custom names) is what a call, or a class
component's live instance, holds while it lives. ``Batch`` groups calls from many items,
``Retry`` says how often and how patiently to try again, ``RateLimit`` caps calls or tokens per
period for external APIs. Each validates its values at once and names the bad one:
``Batch(max_size=0)`` raises ``ConfigError: Batch.max_size must be >= 1, got 0``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

from legato.errors import ConfigError

Executor = Literal["inline", "thread", "process", "async"]
EXECUTORS: tuple[str, ...] = ("inline", "thread", "process", "async")

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4,
          "tb": 1000**4, "tib": 1024**4}


def parse_bytes(value: int | float | str, *, option: str = "memory") -> int:
    """``"400MiB"`` -> 419430400; ``2e9`` -> 2000000000. Raises ConfigError on anything else."""
    if isinstance(value, bool):
        raise ConfigError(
            f"{option} must be a size like 512MiB or a number of bytes; got {value!r}"
        )
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(
                f"{option} must be a size like 512MiB, 6GiB or 2GB, or a number of bytes; "
                f"got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    if number < 0:
        raise ConfigError(f"{option} must be >= 0, got {value!r}")
    return int(number * _UNITS[unit])


def _positive(option: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{option} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{option} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class Batch:
    """Dynamic batching: calls from different items are grouped into one call of a list.

    A batch is flushed when it holds ``max_size`` calls or its oldest call has waited
    ``max_wait_ms`` milliseconds. The component then receives one list per input port and must
    return a list of the same length. ``max_wait_ms="auto"`` adapts the wait to the measured
    arrival rate and service time (see :mod:`legato.engine.run`).
    """

    max_size: int = 32
    max_wait_ms: float | Literal["auto"] = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int):
            raise ConfigError(f"Batch.max_size must be an int >= 1, got {self.max_size!r}")
        if self.max_size < 1:
            raise ConfigError(f"Batch.max_size must be >= 1, got {self.max_size}")
        if self.max_wait_ms != "auto":
            if isinstance(self.max_wait_ms, str):
                raise ConfigError(f"Batch.max_wait_ms must be a number of milliseconds or "
                                  f"'auto', got {self.max_wait_ms!r}")
            _positive("Batch.max_wait_ms", self.max_wait_ms, allow_zero=True)


@dataclass(frozen=True)
class Retry:
    """Retry policy: up to ``attempts`` calls in all; before attempt n+1 wait
    ``backoff * multiplier**(n-1)`` seconds, at most ``max_backoff``.

    ``on`` limits retries to these exception types (default: any Exception).
    """

    attempts: int = 3
    backoff: float = 0.0
    multiplier: float = 2.0
    max_backoff: float = 60.0
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigError(f"Retry.attempts must be an int >= 1, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigError(f"Retry.attempts must be >= 1, got {self.attempts}")
        _positive("Retry.backoff", self.backoff, allow_zero=True)
        _positive("Retry.multiplier", self.multiplier)
        _positive("Retry.max_backoff", self.max_backoff, allow_zero=True)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        return float(min(self.max_backoff, self.backoff * self.multiplier ** (attempt - 1)))

    def retries(self, error: BaseException) -> bool:
        """Does this policy retry after ``error``?"""
        return isinstance(error, self.on)


NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class RateLimit:
    """At most ``calls`` calls, or ``tokens`` tokens, per ``per`` seconds (a token bucket).

    Enforced when a call is admitted, never after: a call starts only while the bucket holds a
    call (or any tokens). With ``tokens``, the component reports what each call used with
    ``legato.report_usage(tokens=n)``; the bucket may go into debt by the last call's use, and
    calls wait until it refills. The bucket starts full (a burst of ``calls`` is allowed).
    """

    calls: int | None = None
    tokens: int | None = None
    per: float = 1.0

    def __post_init__(self) -> None:
        if self.calls is None and self.tokens is None:
            raise ConfigError("RateLimit needs calls=... or tokens=... (per period)")
        if self.calls is not None and self.tokens is not None:  # one bucket counts one of them
            raise ConfigError(f"RateLimit takes calls=... or tokens=..., not both; got "
                              f"calls={self.calls!r}, tokens={self.tokens!r}")
        for option in ("calls", "tokens"):
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"RateLimit.{option} must be an int >= 1, got {value!r}")
        _positive("RateLimit.per", self.per)


@dataclass(frozen=True)
class Resources:
    """What one call (or, for a class component, one live instance) holds while it runs."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0
    custom: tuple[tuple[str, float], ...] = ()
    gpu_memory: int = 0

    def __post_init__(self) -> None:
        _positive("cpus", self.cpus, allow_zero=True)
        _positive("gpus", self.gpus, allow_zero=True)
        if self.gpu_memory and not self.gpus:
            raise ConfigError(f"gpu_memory={self.gpu_memory} needs gpus > 0 (e.g. gpus=0.5)")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ConfigError(f"gpus above 1 must be a whole number, got {self.gpus}")
        for key, amount in self.custom:
            _positive(f"resources[{key!r}]", amount, allow_zero=True)

    def as_dict(self) -> dict[str, float]:
        """Every non-zero request by name: ``{"cpus": 1, "memory": 4e8, "asr": 1}``."""
        out = {"cpus": self.cpus, "gpus": self.gpus, "memory": float(self.memory),
               "gpu_memory": float(self.gpu_memory)}
        out.update(dict(self.custom))
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Fifo:
    """A component's waiting calls form a bounded first-in, first-out queue: past ``size``
    waiting calls, the oldest item's call is dropped (its item ends as ``Dropped``, counted)."""

    size: int

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"Fifo(size) needs an int >= 1, got {self.size!r}")


@dataclass(frozen=True)
class Block:
    """Backpressure: while ``size`` calls wait for this component, the run takes no new items
    (a feeding source is not pulled) until one starts."""

    size: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"Block(size) needs an int >= 1, got {self.size!r}")


Queue = Literal["fifo", "latest"] | Fifo | Block
"""What a component's waiting calls do when more arrive: ``"fifo"`` (unbounded, the default),
``"latest"`` (a newer item's call replaces the waiting calls of older items: stale data is
dropped), ``Fifo(n)`` (bounded; the oldest is dropped past n), ``Block(n)`` or ``"block"``
(the run stops taking items while n calls wait)."""

QUEUE_NAMES = ("fifo", "latest", "block")


def parse_queue(value: object) -> Queue:
    """``"fifo"``, ``"latest"``, ``"block"`` (= ``Block(1)``), ``Fifo(n)`` or ``Block(n)``;
    ConfigError naming the valid values otherwise."""
    if isinstance(value, Fifo | Block):
        return value
    if value == "block":
        return Block(1)
    if value in ("fifo", "latest"):
        return value
    raise ConfigError(f"queue must be 'fifo', 'latest', 'block', lg.Fifo(n) or lg.Block(n); "
                      f"got {value!r}")


@dataclass(frozen=True)
class Options:
    """Everything declared on a component besides its code. Validated when declared."""

    resources: Resources = field(default_factory=Resources)
    instances: int = 1
    min_instances: int = 0
    batch: Batch | None = None
    rate_limit: RateLimit | None = None
    retry: Retry = NO_RETRY
    timeout: float | None = None
    cache: bool = False
    version: str = ""
    weights: str = ""
    executor: Executor = "thread"
    queue: Queue = "fifo"
    max_age: float | None = None
    deadline: float | None = None
    on_miss: Any = "skip"

    def __post_init__(self) -> None:
        if isinstance(self.instances, bool) or not isinstance(self.instances, int):
            raise ConfigError(f"instances must be an int >= 1, got {self.instances!r}")
        if self.instances < 1:
            raise ConfigError(f"instances must be >= 1, got {self.instances}")
        if not 0 <= self.min_instances <= self.instances:
            raise ConfigError(f"instances=(min, max) needs 0 <= min <= max, got "
                              f"({self.min_instances}, {self.instances})")
        if self.timeout is not None:
            _positive("timeout", self.timeout)
        if self.max_age is not None:
            _positive("max_age", self.max_age)
        if self.deadline is not None:
            _positive("deadline", self.deadline)
        parse_queue(self.queue)
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"executor must be one of {', '.join(EXECUTORS)}; got {self.executor!r}"
            )

    @property
    def requested(self) -> Resources:
        """What the component really asks of the machine: its ``resources``, less the CPU of
        an inline call, which runs on the scheduler's own thread (already running)."""
        if self.executor == "inline" and self.resources.cpus:
            return replace(self.resources, cpus=0.0)
        return self.resources



class ComponentOptions(TypedDict, total=False):
    """The options ``@component(...)`` and ``Component.with_options(...)`` take (see
    :func:`legato.component` for what each means)."""

    cpus: float
    gpus: float
    gpu_memory: int | float | str
    memory: int | float | str
    resources: Mapping[str, float]
    instances: int | tuple[int, int]
    batch: Batch
    rate_limit: RateLimit
    retries: Retry | int
    timeout: float
    cache: bool
    version: str
    weights: str
    executor: Executor
    queue: Queue | str
    max_age: float
    deadline: float
    on_miss: Any


def build_options(
    base: Options | None = None,
    *,
    cpus: float | None = None,
    gpus: float | None = None,
    gpu_memory: int | float | str | None = None,
    memory: int | float | str | None = None,
    resources: Mapping[str, float] | None = None,
    instances: int | tuple[int, int] | None = None,
    batch: Batch | None = None,
    rate_limit: RateLimit | None = None,
    retries: Retry | int | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    version: str | None = None,
    weights: str | None = None,
    executor: Executor | None = None,
    queue: Queue | str | None = None,
    max_age: float | None = None,
    deadline: float | None = None,
    on_miss: Any = None,
) -> Options:
    base = base or Options()
    res = base.resources
    if resources is not None and not isinstance(resources, Mapping):
        raise ConfigError(f"resources must be a mapping like {{'asr': 1}}, got {resources!r}")
    for reserved in ("cpus", "gpus", "memory", "gpu_memory"):
        if resources and reserved in resources:
            raise ConfigError(f"resources: pass {reserved} as its own option, not in resources=")
    res = Resources(
        cpus=res.cpus if cpus is None else cpus,
        gpus=res.gpus if gpus is None else gpus,
        memory=res.memory if memory is None else parse_bytes(memory),
        custom=res.custom if resources is None else tuple(sorted(resources.items())),
        gpu_memory=res.gpu_memory if gpu_memory is None else parse_bytes(
            gpu_memory, option="gpu_memory"),
    )
    if rate_limit is not None and not isinstance(rate_limit, RateLimit):
        raise ConfigError(f"rate_limit must be a RateLimit(calls=..., per=...), got {rate_limit!r}")
    low, high = base.min_instances, base.instances
    if isinstance(instances, tuple):
        if len(instances) != 2:
            raise ConfigError(f"instances must be a number or (min, max), got {instances!r}")
        low, high = instances
    elif instances is not None:
        low, high = min(base.min_instances, instances) if base.min_instances else 0, instances
    if isinstance(retries, int) and not isinstance(retries, bool):
        if retries < 0:
            raise ConfigError(f"retries must be >= 0 (retries after the first try), got {retries}")
        retries = Retry(attempts=retries + 1)
    if retries is not None and not isinstance(retries, Retry):
        raise ConfigError(f"retries must be a Retry(...) or a number of retries, got {retries!r}")
    if batch is not None and not isinstance(batch, Batch):
        raise ConfigError(f"batch must be a Batch(max_size=..., max_wait_ms=...), got {batch!r}")
    return Options(
        resources=res,
        instances=high,
        min_instances=low,
        batch=base.batch if batch is None else batch,
        rate_limit=base.rate_limit if rate_limit is None else rate_limit,
        retry=base.retry if retries is None else retries,
        timeout=base.timeout if timeout is None else timeout,
        cache=base.cache if cache is None else cache,
        version=base.version if version is None else version,
        weights=base.weights if weights is None else weights,
        executor=base.executor if executor is None else executor,
        queue=base.queue if queue is None else parse_queue(queue),
        max_age=base.max_age if max_age is None else max_age,
        deadline=base.deadline if deadline is None else deadline,
        on_miss=base.on_miss if on_miss is None else on_miss,
    )


