"""The MLLP listener: HL7 v2 messages over TCP, each committed to the inbox before its ACK.

Framing is the `hl7` library's (`hl7.mllp.start_hl7_server`, `readblock`/`writeblock`).
For each block the listener reads MSH only, stores the raw bytes with
`office.ledgers.store_inbound` (source ``hl7:<sending facility>``, key MSH-10) in a
transaction of its own, and answers once that transaction has committed:

- AA: stored now, or stored before (a resend after a lost ACK is not stored twice);
- AR: never storable as sent (no MSH, no control id, a message type we do not read);
- AE: the database could not take it now; the sender keeps it and sends it again.

What the message says is decided later, by the intake flow: the stored item is handed to
the dispatcher after the ACK (the sweeper of `office serve` catches what that misses).
A sender in original mode waits for each ACK, so one connection is one message at a
time; connections run side by side. The store runs in a worker thread, as the web
intake's does, so a busy database never holds up the event loop the listener shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from integrations.hl7.ack import AckCode, ErrorCode, Rejection, compose_ack
from office.db import transaction
from office.ledgers import store_inbound
from office.records.hl7.events import SUPPORTED_EVENTS
from office.records.hl7.wire import Encoding, Header, Hl7Error, read_header

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from office.settings import Settings

__all__ = [
    "CONTENT_TYPE",
    "MAX_MESSAGE_BYTES",
    "Dispatcher",
    "MllpListenError",
    "Receipt",
    "receive",
    "serve_mllp",
    "source_for",
]

# Hands a stored item (id, dedupe key) to whatever processes it; returns a run id, or raises.
Dispatcher = Callable[[int, str], Awaitable[str | None]]

CONTENT_TYPE = "application/hl7-v2+er7"
MAX_MESSAGE_BYTES = 1024 * 1024
_SOURCE_LENGTH = 64  # InboxItem.source
_KEY_LENGTH = 200  # InboxItem.idempotency_key

log = logging.getLogger("integrations.hl7")


class MllpListenError(OSError):
    """The listener cannot listen where it was told to; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of one block: its ACK, and the inbox row when it was stored now."""

    ack: bytes
    inbox_id: int | None = None
    created: bool = False
    attempts: int = 0


def source_for(header: Header) -> str:
    """The inbox source: ``hl7:`` and the sending facility (else application), cut to fit."""
    name = header.sending_facility or header.sending_application or "unknown"
    name = "".join(c if c.isprintable() else "?" for c in name)
    return f"hl7:{name}"[:_SOURCE_LENGTH]


def receive(
    factory: sessionmaker[Session], block: bytes, *, now: datetime | None = None
) -> Receipt:
    """Store one message and compose its ACK; blocking (the listener runs it in a thread)."""
    try:
        encoding, header = read_header(block)
    except Hl7Error as exc:
        rejection = Rejection(
            AckCode.REJECTED, ErrorCode.REQUIRED_FIELD_MISSING, exc.reason, exc.where
        )
        return Receipt(compose_ack(None, _best_encoding(block), rejection=rejection, now=now))
    refusal = _refusal(header)
    if refusal is not None:
        return Receipt(compose_ack(header, encoding, rejection=refusal, now=now))
    try:
        with transaction(factory) as session:
            item, created = store_inbound(
                session,
                source=source_for(header),
                key=header.control_id,
                body=block,
                content_type=CONTENT_TYPE,
            )
            session.flush()
            inbox_id, attempts = item.id, item.attempts
            reused = not created and item.body != block
    except Exception as exc:
        # Not stored, so not acknowledged as stored: the sender keeps it and resends.
        log.warning("hl7 message not stored (%s); answered AE", type(exc).__name__)
        error = Rejection(
            AckCode.ERROR,
            ErrorCode.APPLICATION_INTERNAL,
            "not stored; the receiver's database is unavailable, send it again",
        )
        return Receipt(compose_ack(header, encoding, rejection=error, now=now))
    if reused:
        log.warning("hl7 control id of inbox %s reused for other content; kept the first", inbox_id)
    return Receipt(compose_ack(header, encoding, now=now), inbox_id, created, attempts)


async def serve_mllp(
    settings: Settings,
    factory: sessionmaker[Session],
    dispatcher: Dispatcher | None,
    *,
    ready: Callable[[str, int], object] | None = None,
) -> None:
    """Listen on OFFICE_MLLP_HOST:OFFICE_MLLP_PORT until cancelled.

    Args:
        settings: Where to listen (`mllp_host`, `mllp_port`; port 0 takes a free one).
        factory: Sessions on the office database the inbox lives in.
        dispatcher: Starts processing of a newly stored item; None leaves it to the sweeper.
        ready: Called with the host and port once the listener accepts connections.
    """
    connections: set[asyncio.Task[None]] = set()
    dispatches: set[asyncio.Task[None]] = set()

    async def on_connect(reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await _converse(factory, dispatcher, reader, writer, dispatches)
        finally:
            connections.discard(task)

    try:
        server = await start_hl7_server(
            on_connect, settings.mllp_host, settings.mllp_port, limit=MAX_MESSAGE_BYTES
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MllpListenError(
                f"port {settings.mllp_port} on {settings.mllp_host} is taken, so the HL7 "
                "listener cannot listen there: stop what listens on it, or set OFFICE_MLLP_PORT"
            ) from None
        raise MllpListenError(
            f"the HL7 listener cannot listen on {settings.mllp_host}:{settings.mllp_port} "
            f"({exc.strerror or type(exc).__name__}); check OFFICE_MLLP_HOST and OFFICE_MLLP_PORT"
        ) from None
    host, port = server.sockets[0].getsockname()[:2]
    if ready is not None:
        ready(str(host), int(port))
    try:
        await asyncio.Event().wait()  # until cancelled
    finally:
        server.close()
        for task in [*connections, *dispatches]:
            task.cancel()
        await asyncio.gather(*connections, *dispatches, return_exceptions=True)
        await server.wait_closed()


async def _converse(
    factory: sessionmaker[Session],
    dispatcher: Dispatcher | None,
    reader: HL7StreamReader,
    writer: HL7StreamWriter,
    dispatches: set[asyncio.Task[None]],
) -> None:
    """One connection: read a block, store it, ACK it, hand it over; until the sender hangs up."""
    try:
        while True:
            try:
                block = await reader.readblock()
            except asyncio.IncompleteReadError:
                return  # the sender closed the connection
            except InvalidBlockError:
                # No start byte: nothing to answer to. The sender, lacking an ACK, resends.
                log.warning("hl7 block without its MLLP start byte dropped")
                continue
            except ValueError:
                rejection = Rejection(
                    AckCode.REJECTED,
                    ErrorCode.APPLICATION_INTERNAL,
                    f"message larger than {MAX_MESSAGE_BYTES} bytes",
                )
                writer.writeblock(compose_ack(None, Encoding(), rejection=rejection))
                await writer.drain()
                continue
            receipt = await asyncio.to_thread(receive, factory, block)
            writer.writeblock(receipt.ack)
            await writer.drain()
            if receipt.created and receipt.inbox_id is not None and dispatcher is not None:
                task = asyncio.create_task(
                    _dispatch(dispatcher, receipt.inbox_id, receipt.attempts)
                )
                dispatches.add(task)
                task.add_done_callback(dispatches.discard)
    except (ConnectionError, OSError):
        return  # the sender went away mid-conversation; what it did not hear ACKed, it resends
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _dispatch(dispatcher: Dispatcher, inbox_id: int, attempts: int) -> None:
    try:
        await dispatcher(inbox_id, f"inbox-{inbox_id}-{attempts}")
    except Exception:
        # Stored is what the ACK promised; the sweeper dispatches it later.
        log.warning("inbox %s stored; dispatch deferred to the sweeper", inbox_id)


def _refusal(header: Header) -> Rejection | None:
    """Why a readable message is still not stored, or None."""
    if len(header.control_id) > _KEY_LENGTH or not header.control_id.isprintable():
        return Rejection(
            AckCode.REJECTED,
            ErrorCode.DATA_TYPE,
            f"the control id must be printable and at most {_KEY_LENGTH} characters",
            "MSH-10",
        )
    events = {trigger for code, trigger in SUPPORTED_EVENTS if code == header.message_code}
    if not events:
        return Rejection(
            AckCode.REJECTED,
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {header.message_code[:10]} is not read here (ADT and SIU are)",
            "MSH-9",
        )
    if header.trigger not in events:
        return Rejection(
            AckCode.REJECTED,
            ErrorCode.UNSUPPORTED_EVENT,
            f"event {header.message_type[:20]} is not read here",
            "MSH-9",
        )
    return None


def _best_encoding(block: bytes) -> Encoding:
    """The sender's delimiters when its MSH gives them, for an ACK to a message we could
    not read; the standard ones otherwise."""
    head = block.lstrip()[:9].decode("iso8859-1")
    if head.startswith("MSH") and len(head) == 9:
        chars = head[3:8]
        if len(set(chars)) == 5 and not any(c.isalnum() or c.isspace() for c in chars):
            return Encoding(chars[0], chars[1], chars[2], chars[3], chars[4])
    return Encoding()
