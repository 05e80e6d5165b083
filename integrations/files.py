"""Durable file writes for the file transports (the demo's mail and SMS outboxes).

Outbox files hold patients' messages, so they are written the one way everything under
OFFICE_HOME is: `office.home.write_private`, atomic, a 0600 file in 0700 directories.
"""

from __future__ import annotations

from office.home import write_private as write_atomically

__all__ = ["write_atomically"]
