"""A mail transport that writes .eml files: the development and demo outbox."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from integrations.files import write_atomically
from office.contracts.mail import MailRetryableError, Wire, plain_recipients, to_wire

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from email.message import EmailMessage
    from types import TracebackType

__all__ = ["FileMailer"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class FileMailer:
    """Writes each message to ``<message-id>.eml``; resending the same id overwrites it.

    Files are written to a temporary name and renamed, so a reader never sees a
    half-written message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def __aenter__(self) -> FileMailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def path_for(self, message_id: str) -> Path:
        """Where the message with this Message-ID is (or would be) written."""
        stem = _UNSAFE.sub("_", message_id.strip().strip("<>")) or "_"
        return self.directory / f"{stem}.eml"

    async def send(
        self, message: EmailMessage | Wire, *, ready: Awaitable[bool] | None = None
    ) -> str | None:
        """Write the message as CRLF bytes, as an SMTP server would receive it, once
        `ready` (see `Mailer.send`) gives the go-ahead."""
        wire = message if isinstance(message, Wire) else to_wire(message)
        envelope = plain_recipients(wire.envelope)
        if ready is not None and not await ready:
            return None
        path = self.path_for(envelope.message_id)
        try:
            await asyncio.to_thread(write_atomically, path, wire.data)
        except OSError as exc:
            raise MailRetryableError("could not write the outbox file") from exc
        return envelope.message_id
