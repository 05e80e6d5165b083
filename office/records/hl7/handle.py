"""The intake handler for stored HL7 v2 messages (source ``hl7:<facility>``).

ADT becomes a record batch, SIU a booking; both go through `apply_inbound`, the one door
every source uses. A message that cannot be read is rejected with where it is wrong
(segment and field, never a value) and stays in the inbox, replayable after a fix.

Times sent without an offset are the sender's wall clock: an SIU's are read in its
location's zone, an ADT's in the zone of the practice's first location (UTC when there is
none yet, which only orders one sender's updates among themselves).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.intake import IntakeRejected, Outcome
from office.models import InboxItem, Location
from office.records.hl7.events import ADT_EVENTS, SIU_EVENTS
from office.records.hl7.patients import read_adt
from office.records.hl7.schedule import location_names, read_siu
from office.records.hl7.wire import Hl7Error, Hl7Message, parse_message
from office.records.inbound import apply_inbound
from office.records.updates import BookingUpdate, RecordBatch

__all__ = ["handle_hl7", "read_hl7"]


def handle_hl7(session: Session, item: InboxItem, now: datetime) -> Outcome:
    """Apply one stored HL7 message, or reject it with its reasons."""
    parsed = read_hl7(session, item.body)
    return apply_inbound(session, item, parsed, now=now)


def read_hl7(session: Session, body: bytes) -> RecordBatch | BookingUpdate:
    """The normalized records a stored message stands for; `IntakeRejected` when unreadable."""
    control = ""
    try:
        message = parse_message(body)
        control = message.header.control_id
        return _read(session, message)
    except Hl7Error as exc:
        label = f"message {control}: " if control else ""
        raise IntakeRejected(f"{label}{exc}") from None


def _read(session: Session, message: Hl7Message) -> RecordBatch | BookingUpdate:
    header = message.header
    if header.message_code == "ADT" and header.trigger in ADT_EVENTS:
        return read_adt(message, zone=_practice_zone(session))
    if header.message_code == "SIU" and header.trigger in SIU_EVENTS:
        names = location_names(message)
        found = _location(session, names)
        if found is None:
            return read_siu(message, zone=_practice_zone(session))
        location_id, zone = found
        return read_siu(message, zone=zone, location_id=location_id)
    raise Hl7Error(f"event {header.message_type[:20]} is not read here", where="MSH-9")


def _location(session: Session, names: tuple[str, ...]) -> tuple[int, str] | None:
    """The first of AIL-3's names that is one of our locations: its id and zone."""
    for name in names:
        row = session.execute(
            select(Location.id, Location.timezone).where(Location.name == name).limit(1)
        ).first()
        if row is not None:
            return int(row[0]), str(row[1])
    return None


def _practice_zone(session: Session) -> str:
    zone = session.scalar(select(Location.timezone).order_by(Location.id).limit(1))
    return zone or "UTC"
