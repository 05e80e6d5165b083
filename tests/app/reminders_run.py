"""One send-reminders flow run, through the engine, as a worker would start it; the process a
test SIGKILLs mid-batch and then runs again.

    python -m tests.app.reminders_run NOW_ISO

Settings come from OFFICE_* variables and the server from PREFECT_API_URL, as on a worker.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from flows.reminders import send_reminders

if __name__ == "__main__":
    asyncio.run(send_reminders(now=datetime.fromisoformat(sys.argv[1])))
