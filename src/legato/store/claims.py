"""Who holds a run: a claim is the process that writes it, told apart from any later process.

A run whose status is ``"running"`` is held by the process its row names: ``host``, ``pid``
and ``process``, a token of that process's start (on Linux the boot id and the start time in
``/proc/PID/stat``, field 22), so that a pid the system gave to another process since is not
mistaken for the holder. The process that starts a run holds it; ``resume`` takes the claim in
one transaction (SQLite's write lock, PostgreSQL's row lock), and only when its holder is gone:

- the holder is on this host and its pid is not running, or runs a process that started at
  another time (the pid was reused): it is gone, the claim is taken over;
- the holder is alive, or on another host (legato cannot tell): the claim is refused, with who
  holds it; ``legato resume --force`` releases it first when the user knows better.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Claimant:
    """A process that may hold a run."""

    host: str
    pid: int
    process: str  # the token of its start ("" where the system does not tell)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host or 'an unknown host'}"


def started(pid: int) -> str:
    """A token of when process ``pid`` started ("": unknown, or no such process): the boot id
    and the start time in clock ticks since boot, read from ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split()  # after the command name, which may hold spaces
    if len(fields) < 20:
        return ""
    return f"{_boot()}:{fields[19]}"  # field 22 of the line; fields here start at field 3


@functools.cache
def _boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def me() -> Claimant:
    """This process, as a claimant."""
    pid = os.getpid()
    return Claimant(socket.gethostname(), pid, started(pid))


def alive(claimant: Claimant) -> bool:
    """Whether the claimant may still be running: True unless it is known to be gone (a process
    on this host that is not running, or a pid now held by a process started later)."""
    if claimant.host != socket.gethostname():
        return True  # another machine: no way to tell from here
    if claimant.pid <= 0:
        return False
    try:
        os.kill(claimant.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    if claimant.process:
        now = started(claimant.pid)
        if now and now != claimant.process:
            return False  # the pid was reused: the holder is gone
    return True
