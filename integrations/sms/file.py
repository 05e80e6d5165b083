"""An SMS sender that writes JSON files: the development and demo outbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from integrations.files import write_atomically
from office.contracts.sms import SmsRetryableError, one_number

__all__ = ["FileSms"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class FileSms:
    """Writes each text to ``<idempotency key>.json``; resending the same key overwrites it."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, idempotency_key: str) -> Path:
        """Where the text with this key is (or would be) written."""
        stem = _UNSAFE.sub("_", idempotency_key) or "_"
        return self.directory / f"{stem}.json"

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Write the text atomically; the returned id is derived from the key, like a provider's."""
        if not idempotency_key:
            raise ValueError("idempotency_key must not be empty")
        one_number(to)
        message_id = "file-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
        record = {"id": message_id, "idempotency_key": idempotency_key, "to": to, "body": body}
        data = json.dumps(record, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        try:
            await asyncio.to_thread(write_atomically, self.path_for(idempotency_key), data)
        except OSError as exc:
            raise SmsRetryableError("could not write the SMS outbox file") from exc
        return message_id
