"""Storing fetched mail: raw bytes and a record, once per (mailbox, dedupe key), committed first.

The dedupe key is the Message-ID, or, when a message has none, a hash of the
headers that do not change between deliveries (Date, From, Sender, To, Cc,
Subject, In-Reply-To, References) and of the body, line endings normalised. It
is per mailbox: the same Message-ID sent to two addresses routes in each.

`ingest` reads a mailbox batch by batch; each batch is committed (rows and the
IMAP position together) before the next is fetched, and nothing is moved or
flagged on the server here: `finish_on_server` does that once messages are
routed. A run killed anywhere leaves every fetched message stored once, or not
at all and still on the server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from office.contracts.mailbox import Fetched, FetchedBatch, Mailbox, Position
from office.db import transaction
from office.models import MailboxState, MailMessage, MailStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["IngestResult", "dedupe_key", "finish_on_server", "ingest", "store_batch"]

BATCH = 200
"""Messages fetched and committed together."""

_STABLE = (b"date", b"from", b"sender", b"to", b"cc", b"subject", b"in-reply-to", b"references")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)


def _head_and_body(raw: bytes) -> tuple[bytes, bytes]:
    found = _HEADER_END.search(raw)
    if found is None:
        return raw, b""
    return raw[: found.start()], raw[found.end() :]


def dedupe_key(raw: bytes) -> tuple[str, str | None]:
    """The message's dedupe key ("m:…" from its Message-ID, "h:…" otherwise) and Message-ID."""
    head, body = _head_and_body(raw)
    fields: dict[bytes, list[bytes]] = {}
    for match in _FIELD.finditer(head):
        name = match.group(1).lower()
        fields.setdefault(name, []).append(b" ".join(match.group(2).split()))
    ids = fields.get(b"message-id")
    message_id = ids[0].decode("utf-8", "replace").strip() if ids else ""
    if message_id:
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
        return "m:" + digest[:60], message_id[:250]
    hasher = hashlib.sha256()
    stable = [(name, value) for name in _STABLE for value in fields.get(name, ())]
    if not stable:
        # Nothing stable to go by (not even a From): the bytes are all there is.
        hasher.update(b"raw\n" + raw.replace(b"\r\n", b"\n"))
        return "h:" + hasher.hexdigest()[:60], None
    for name, value in stable:
        hasher.update(name + b":" + value + b"\n")
    hasher.update(b"\n" + body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return "h:" + hasher.hexdigest()[:60], None


@dataclass
class IngestResult:
    """What one mailbox run fetched: stored new, already known, finished at once."""

    fetched: int = 0
    stored: int = 0
    known: int = 0
    finished_duplicates: int = 0
    stored_ids: list[int] = field(default_factory=list)


def store_batch(
    session: Session,
    mailbox: str,
    batch: FetchedBatch,
    *,
    now: datetime,
    may_acknowledge: bool,
) -> tuple[list[int], int, list[str]]:
    """Store a fetched batch; returns (new row ids, known count, refs to finish at once).

    A message already stored keeps its row: if it is still waiting to be routed,
    its server reference is refreshed (a changed UIDVALIDITY renumbers it); if it
    was routed already, or is a second copy within this batch, its reference is
    returned to be moved or flagged now.
    """
    keyed: dict[str, tuple[Fetched, str | None]] = {}
    finish_now: list[str] = []
    for message in batch.messages:
        key, message_id = dedupe_key(message.raw)
        if key in keyed:
            finish_now.append(message.ref)
        else:
            keyed[key] = (message, message_id)
    known: dict[str, tuple[int, MailStatus]] = {}
    if keyed:
        rows = session.execute(
            select(MailMessage.dedupe_key, MailMessage.id, MailMessage.status).where(
                MailMessage.mailbox == mailbox, MailMessage.dedupe_key.in_(list(keyed))
            )
        )
        known = {row.dedupe_key: (row.id, row.status) for row in rows}
    fresh: list[dict[str, Any]] = []
    refreshed: list[dict[str, Any]] = []
    for key, (message, message_id) in keyed.items():
        if key in known:
            row_id, status = known[key]
            if status is MailStatus.STORED:
                refreshed.append({"id": row_id, "server_ref": message.ref, "server_done": False})
            else:
                finish_now.append(message.ref)
            continue
        fresh.append(
            {
                "mailbox": mailbox,
                "dedupe_key": key,
                "message_id": message_id,
                "raw": message.raw,
                "size": len(message.raw),
                "server_ref": message.ref,
                "server_done": False,
                "may_acknowledge": may_acknowledge,
                "status": MailStatus.STORED,
                "decision": {},
                "stored_at": now,
            }
        )
    if refreshed:
        session.execute(update(MailMessage), refreshed)
    new_ids: list[int] = []
    if fresh:
        created = session.execute(insert(MailMessage).returning(MailMessage.id), fresh)
        new_ids = [row.id for row in created]
    _advance(session, mailbox, batch, now)
    return new_ids, len(keyed) - len(fresh), finish_now


def load_position(session: Session, mailbox: str) -> Position | None:
    state = session.get(MailboxState, mailbox)
    if state is None:
        return None
    return Position(validity=state.uid_validity, last_uid=state.last_uid)


def _advance(session: Session, mailbox: str, batch: FetchedBatch, now: datetime) -> None:
    uids = [message.uid for message in batch.messages if message.uid is not None]
    if not uids:
        return
    last = max(uids)
    state = session.get(MailboxState, mailbox, with_for_update=True)
    if state is None:
        session.add(
            MailboxState(
                mailbox=mailbox, uid_validity=batch.validity, last_uid=last, updated_at=now
            )
        )
    elif state.uid_validity != batch.validity:
        state.uid_validity, state.last_uid, state.updated_at = batch.validity, last, now
    elif last > state.last_uid:
        state.last_uid, state.updated_at = last, now
    session.flush()


def ingest(
    factory: sessionmaker[Session],
    mailbox: Mailbox,
    *,
    now: datetime,
    may_acknowledge: bool = True,
    batch_size: int = BATCH,
    max_messages: int | None = None,
) -> IngestResult:
    """Fetch and store everything new in an open mailbox, one committed batch at a time.

    Raises:
        MailboxRetryableError, MailboxFinalError: from the adapter; every batch
            committed before the failure stays stored.
    """
    result = IngestResult()
    with factory() as session:
        position = load_position(session, mailbox.name)
    while max_messages is None or result.fetched < max_messages:
        left = None if max_messages is None else max_messages - result.fetched
        limit = batch_size if left is None else min(batch_size, left)
        batch = mailbox.fetch(position, limit)
        if not batch.messages:
            break
        try:
            with transaction(factory) as session:
                new_ids, known, finish_now = store_batch(
                    session, mailbox.name, batch, now=now, may_acknowledge=may_acknowledge
                )
        except IntegrityError:
            # A concurrent run (an IDLE wake-up beside the schedule) stored some of these
            # first; the batch again finds them known.
            with transaction(factory) as session:
                new_ids, known, finish_now = store_batch(
                    session, mailbox.name, batch, now=now, may_acknowledge=may_acknowledge
                )
        result.fetched += len(batch.messages)
        result.stored += len(new_ids)
        result.known += known
        result.stored_ids.extend(new_ids)
        if finish_now:
            mailbox.finish(finish_now)
            result.finished_duplicates += len(finish_now)
        uids = [message.uid for message in batch.messages if message.uid is not None]
        if uids:
            position = Position(validity=batch.validity, last_uid=max(uids))
        if not batch.more:
            break
    return result


def pending_on_server(session: Session, mailbox: str) -> Sequence[tuple[int, str]]:
    """Routed or quarantined messages not yet moved or flagged on the server: (id, ref)."""
    rows = session.execute(
        select(MailMessage.id, MailMessage.server_ref)
        .where(
            MailMessage.mailbox == mailbox,
            MailMessage.server_done.is_(False),
            MailMessage.status != MailStatus.STORED,
            MailMessage.server_ref.is_not(None),
        )
        .order_by(MailMessage.id)
    )
    return [(row.id, str(row.server_ref)) for row in rows]


def finish_on_server(factory: sessionmaker[Session], mailbox: Mailbox, *, chunk: int = 500) -> int:
    """Move or flag every decided message of this mailbox on the server; returns how many.

    Raises:
        MailboxRetryableError, MailboxFinalError: the rows stay marked to do next run.
    """
    with factory() as session:
        pending = list(pending_on_server(session, mailbox.name))
    done = 0
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        mailbox.finish([ref for _, ref in part])
        with transaction(factory) as session:
            session.execute(
                update(MailMessage),
                [{"id": row_id, "server_done": True} for row_id, _ in part],
            )
        done += len(part)
    return done
