"""Run one benchmark: `python bench/run.py NAME [options]`.

Each benchmark is a module `bench/NAME.py` with `run(argv: list[str]) -> dict`.
The last line printed is one JSON object with at least `bench`, `n`, `wall_s`,
the baselines, every `ratio_vs_*`, and `peak_rss_mb` (this process and its
children, so a server started for the run is counted).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        names = sorted(
            p.stem
            for p in (ROOT / "bench").glob("*.py")
            if p.stem not in {"run", "__init__"}
            and not p.stem.startswith("_")
            and hasattr(importlib.import_module(f"bench.{p.stem}"), "run")
        )
        print("usage: python bench/run.py NAME [options]\nbenchmarks: " + ", ".join(names))
        return 0 if argv else 2
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(f"bench.{argv[0]}")
    result = module.run(argv[1:])
    result = {"bench": argv[0], **result, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
