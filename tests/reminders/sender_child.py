"""Run one reminder pass in its own process, so a test can SIGKILL it mid-batch.

    python -m tests.reminders.sender_child NOW_ISO

The pass is the send-reminders flow's steps through its tasks' own functions, as
in the other fault tests. Settings come from OFFICE_* variables, as in production.
"""

from __future__ import annotations

import sys
from datetime import datetime

from flows.runtime import office
from tests.reminders.conftest import run_reminder_steps


def main(now_iso: str) -> int:
    current = office()
    try:
        run_reminder_steps(current.settings, current.factory, datetime.fromisoformat(now_iso))
    finally:
        current.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
