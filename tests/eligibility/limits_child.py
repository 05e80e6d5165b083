"""One eligibility run in its own process, as a second worker would run it.

    python -m tests.eligibility.limits_child NOW_ISO GO_FILE

It prints "ready" once Prefect and the flows are imported, waits for GO_FILE to exist (so
two children ask at the same moment), runs `verify-eligibility` for NOW's day alone and
prints its counts as JSON. Settings come from OFFICE_* variables, Prefect's API from
PREFECT_API_URL, as on a worker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from flows.eligibility import verify_eligibility
from flows.runtime import office


def main(now_iso: str, go: str) -> int:
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.02)
    try:
        counts = asyncio.run(verify_eligibility(days_ahead=0, now=datetime.fromisoformat(now_iso)))
    finally:
        office().engine.dispose()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
