"""What the tests look at from outside: live processes by group or parentage, and a bounded wait."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a process, None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _all() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def alive(pid: int) -> bool:
    """Running or sleeping: a zombie nobody reaped yet counts as gone."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def in_group(pgid: int) -> list[int]:
    """Live processes of a process group."""
    return [pid for pid, (state, _, group) in _all().items() if group == pgid and state != "Z"]


def descendants(pid: int) -> list[int]:
    """Live children of a process, their children, and so on."""
    table = _all()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (state, ppid, _) in table.items():
            if ppid == parent and state != "Z":
                found.append(child)
                frontier.append(child)
    return found


def wait_for(check: Callable[[], bool], *, within: float, every: float = 0.25) -> bool:
    """Poll until `check()` holds; False if it never did within the bound."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with process_group=0 and everything in its group: SIGTERM,
    20 s to finish, then SIGKILL."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
