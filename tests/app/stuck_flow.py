"""A flow run that never ends by itself: the process a test SIGKILLs, as a dead worker's run.

python -m tests.app.stuck_flow
"""

from __future__ import annotations

import time

from prefect import flow


@flow(name="stuck")
def stuck() -> None:
    time.sleep(3600)


if __name__ == "__main__":
    stuck()
