"""What the suite is made of: families of workloads, each measured on several systems.

A :class:`Family` is one workload family (B1 and B2, B3, the STG runs, ...): the rows it
reports (:class:`RowSpec`, each with its budget) and one ``measure`` per system. A measure runs
the family's workloads on its system and returns a :class:`Sample`: one value per row id.
``legato`` is the system under test; every other system is a baseline. The runner calls every
measure, in an order that keeps Ray's cluster apart from the others, and joins the samples into
:class:`Row` s, the form ``results/latest.json`` holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RowSpec:
    """One reported figure: ``metric`` per workload, and the budget legato must meet."""

    id: str
    workload: str
    metric: str
    budget: float | None
    lower_is_better: bool = True


@dataclass
class Sample:
    """What one system measured: row id -> value. ``notes`` explain a value (row id -> text);
    ``invalid`` names rows whose value breaks a hard rule (a makespan below the lower bound
    means the capacity was not respected), so it cannot meet any budget."""

    values: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)


Measure = Callable[[], Sample]


@dataclass
class Family:
    """A workload family: its rows and a measure per system (``legato`` among them).
    ``on_ray``: every system runs on the suite's Ray cluster (measured once it is up)."""

    name: str
    rows: list[RowSpec]
    systems: dict[str, Measure]
    notes: list[str] = field(default_factory=list)
    on_ray: bool = False


@dataclass
class Row:
    """One line of the table and of ``latest.json``."""

    id: str
    workload: str
    metric: str
    lower_is_better: bool
    legato: float | None
    baselines: dict[str, float]
    budget: float | None
    meets_budget: bool | None
    note: str = ""


def join(family: Family, samples: dict[str, Sample]) -> list[Row]:
    """The family's rows, from the samples its systems returned (a missing system: skipped)."""
    rows = []
    for spec in family.rows:
        ours = samples.get("legato")
        value = ours.values.get(spec.id) if ours is not None else None
        baselines = {system: sample.values[spec.id] for system, sample in samples.items()
                     if system != "legato" and spec.id in sample.values}
        notes = [f"{system}: {sample.notes[spec.id]}" if system != "legato"
                 else sample.notes[spec.id]
                 for system, sample in samples.items() if spec.id in sample.notes]
        meets: bool | None = None
        if spec.budget is not None and value is not None:
            within = value <= spec.budget if spec.lower_is_better else value >= spec.budget
            meets = within and not (ours is not None and spec.id in ours.invalid)
        rows.append(Row(spec.id, spec.workload, spec.metric, spec.lower_is_better, value,
                        baselines, spec.budget, meets, "; ".join(notes)))
    return rows
