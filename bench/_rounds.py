"""What every benchmark prints before its JSON line: its rounds, their median, what bounds it.

The machine is shared and noisy, so a benchmark runs its work in rounds, pairs each
flow timing with a baseline measured in the same round, and reads its goal on the
median of the per-round ratios. Lines go to stderr; the JSON line on stdout stays last.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import resource
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "bound_by",
    "medians",
    "own_peak_rss_mb",
    "print_profile",
    "print_rounds",
    "reset_peak_rss",
]


def medians(rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The median of each key over the rounds (every round has the same keys)."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def print_rounds(name: str, rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """One line per round and one for the median; returns the medians."""
    for index, values in enumerate(rounds, 1):
        print(f"{name} round {index}: {_line(values)}", file=sys.stderr)
    middle = medians(rounds)
    print(f"{name} median of {len(rounds)}: {_line(middle)}", file=sys.stderr)
    return middle


def bound_by(*, flow_cpu_s: float, wall_s: float, waits: str) -> str:
    """In one line, what bounds the flow: its own CPU when it is busy most of the time,
    else what it waits for (`waits`: the payer's latency, the database's commit, ...)."""
    busy = flow_cpu_s / wall_s if wall_s else 0.0
    if busy >= 0.8:
        return f"bound by the flow's CPU (busy {busy:.0%} of its wall time)"
    return (
        f"bound by {waits}, or by other load on the machine "
        f"(the flow's CPU busy {busy:.0%} of its wall time)"
    )


def print_profile(profiler: cProfile.Profile, lines: int = 60) -> None:
    """The profiled runs' top functions, by cumulative and by own time, to stderr."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        print(out.getvalue(), file=sys.stderr)


def own_peak_rss_mb() -> float:
    """Peak resident memory of this process alone (the flow runs here), in MB: since the
    last `reset_peak_rss` on Linux, else since the process started."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> None:
    """Start the peak over from what this process holds now (Linux: clear_refs 5), so that
    a peak read afterwards is the flow's, not a baseline's run before it in this process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _line(values: Mapping[str, float]) -> str:
    return ", ".join(f"{key} {value:.3f}" for key, value in values.items())
