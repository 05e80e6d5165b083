"""Run one reminder pass in its own process, so a test can SIGKILL it mid-batch.

    python -m tests.reminders.sender_child NOW_ISO

Settings come from OFFICE_* variables, as in production.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from integrations.transports import channels_from_settings
from office.db import make_engine, make_sessionmaker
from office.reminders.service import run_once
from office.settings import load_settings


def main(now_iso: str) -> int:
    settings = load_settings()
    engine = make_engine(settings.db_url)
    try:
        asyncio.run(
            run_once(
                make_sessionmaker(engine),
                settings,
                now=datetime.fromisoformat(now_iso),
                channels=channels_from_settings(settings),
            )
        )
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
