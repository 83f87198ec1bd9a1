"""The suite's outputs: a Markdown table (printed, and kept in the README) and a JSON file."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from dataclasses import asdict
from pathlib import Path

from suite import Row

PEERS = ("dask", "ray")


def machine() -> str:
    """CPU model, cores this process may use, memory, OS and Python: where the figures hold."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{model}, {cpus} CPUs, {memory:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def number(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in ("score", "ratio"):
        return f"{value:.3f}"
    if metric == "items_per_s" or value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table, notes numbered below it."""
    lines = ["| id | workload | metric | budget | legato | meets | plain Python | dask | ray |",
             "| --- | --- | --- | --- | ---: | --- | --- | ---: | ---: |"]
    notes: list[str] = []
    for row in rows:
        plain = ", ".join(f"{name} {number(row.metric, value)}"
                          for name, value in row.baselines.items() if name not in PEERS)
        peers = [number(row.metric, row.baselines.get(name)) for name in PEERS]
        budget = "-" if row.budget is None else (
            ("≤ " if row.lower_is_better else "≥ ") + number(row.metric, row.budget))
        meets = {True: "yes", False: "**no**", None: "-"}[row.meets_budget]
        ident = row.id
        if row.note:
            notes.append(row.note)
            ident += f" [{len(notes)}]"
        lines.append(f"| {ident} | {row.workload} | {row.metric} | {budget} | "
                     f"{number(row.metric, row.legato)} | {meets} | {plain or '-'} | "
                     f"{peers[0]} | {peers[1]} |")
    lines += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines).rstrip() + "\n"


def commit() -> str:
    """The legato commit measured (of the checkout beside this directory), or "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def write_json(path: Path, rows: list[Row], *, notes: list[str], seconds: float,
               waited: float, measured: str) -> None:
    """``measured``: the legato commit the figures are of."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "machine": machine(),
        "commit": measured,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "seconds_waiting_for_quiet": round(waited, 1),
        "notes": notes,
        "results": [asdict(row) for row in rows],
    }, indent=2) + "\n")


START, END = "<!-- results: start -->", "<!-- results: end -->"


def update_readme(path: Path, rows: list[Row], *, notes: list[str], seconds: float,
                  waited: float, measured: str) -> None:
    """Put the table, the machine and the date between the README's result markers."""
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    body = (f"{START}\nMeasured {date}, legato {measured}, on {machine()}. The suite took "
            f"{seconds:.0f} s, {waited:.0f} s of it waiting for other processes to leave the "
            "CPUs.\n\n"
            + table(rows) + "".join(f"\n- {note}" for note in notes) + f"\n{END}")
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} lacks the markers {START} and {END}")
    path.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text,
                           flags=re.S))
