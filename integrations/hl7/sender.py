"""An MLLP sender in original mode, as practice-management systems behave: send one message,
wait for its ACK, and send the same message again when no ACK comes.

Used by the demo to feed messages through the listener, by the benchmark, and by the
tests that kill the listener mid-stream. A message counts as delivered only on an ACK
whose MSA-2 is its own MSH-10; an ACK that arrives after its wait ran out is dropped
with the connection, so it can never be read as the answer to the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, open_hl7_connection

from office.records.hl7.wire import Hl7Error, parse_message, read_header

__all__ = ["Ack", "MllpSendError", "MllpSender"]


class MllpSendError(ConnectionError):
    """No ACK for a message: the connection failed or the wait ran out. Send it again."""


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement as the sender reads it."""

    code: str  # MSA-1: AA, AE, AR
    control_id: str  # MSA-2: the MSH-10 it answers
    text: str  # MSA-3
    raw: bytes

    @property
    def accepted(self) -> bool:
        return self.code in {"AA", "CA"}


class MllpSender:
    """One connection to an MLLP listener, opened on first use and after every failure.

    Args:
        host: The listener's address.
        port: Its port.
        ack_timeout: Seconds to wait for one ACK before the message counts as unanswered.
    """

    def __init__(self, host: str, port: int, *, ack_timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.ack_timeout = ack_timeout
        self._reader: HL7StreamReader | None = None
        self._writer: HL7StreamWriter | None = None
        self.sent = 0  # blocks written, resends included

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, message: bytes) -> Ack:
        """Send once and wait for this message's ACK; `MllpSendError` when none comes."""
        _, header = read_header(message)
        try:
            async with asyncio.timeout(self.ack_timeout):
                reader, writer = await self._connection()
                writer.writeblock(message)
                self.sent += 1
                await writer.drain()
                while True:
                    ack = _read_ack(await reader.readblock())
                    if ack.control_id == header.control_id:
                        return ack
        except (OSError, EOFError, TimeoutError, ValueError, Hl7Error, InvalidBlockError) as exc:
            await self.close()
            raise MllpSendError(f"no ACK for message {header.control_id}") from exc

    async def deliver(self, message: bytes, *, within: float = 300.0, pause: float = 0.2) -> Ack:
        """Send until an ACK comes (reconnecting as needed); `MllpSendError` after `within` s.

        An AE is answered by sending again (the receiver could not store it yet); AA and AR
        are final.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                ack = await self.send(message)
                if ack.code not in {"AE", "CE"} or loop.time() >= deadline:
                    return ack
            except MllpSendError:
                if loop.time() >= deadline:
                    raise
            await asyncio.sleep(pause)  # a listener restarting, or a database coming back

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _connection(self) -> tuple[HL7StreamReader, HL7StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await open_hl7_connection(self.host, self.port)
        return self._reader, self._writer


def _read_ack(block: bytes) -> Ack:
    message = parse_message(block)
    msa = message.first("MSA")
    if msa is None:
        raise Hl7Error("an ACK without MSA", where="MSA")
    return Ack(code=msa[1].text(), control_id=msa[2].text(), text=msa[3].text(), raw=block)
