"""Sending the outbox's general mail: acknowledgements, forwards, staff notices and digests.

Appointment reminders have their own loop (`office.reminders`); everything else
goes through `send_outbox`, with one `Composer` per outbox kind.
"""

from __future__ import annotations

from office.mailing.send import (
    DEFAULT_LEASE,
    ComposeError,
    Composer,
    Outgoing,
    SendTally,
    send_outbox,
)

__all__ = ["DEFAULT_LEASE", "ComposeError", "Composer", "Outgoing", "SendTally", "send_outbox"]
