"""Run one mail routing pass in its own process, so a test can SIGKILL it mid-batch.

    python -m tests.mail.route_child NOW_ISO

The pass is the route-mail flow's steps through its tasks' own functions, as in the
other tests; settings come from OFFICE_* variables, as in production.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from prefect.logging import disable_run_logger

from flows import mail as mail_flow
from flows.runtime import office


def main(now_iso: str) -> int:
    current = office()
    names = [box.name for box in current.settings.inbound_mailboxes]
    try:
        with disable_run_logger():
            asyncio.run(
                mail_flow.run_steps(
                    names,
                    datetime.fromisoformat(now_iso),
                    backlog=False,
                    store=mail_flow.store_mail.fn,
                    route=mail_flow.route_stored.fn,
                    finish=mail_flow.finish_mail.fn,
                    send=mail_flow.send_mail.fn,
                )
            )
    finally:
        current.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
