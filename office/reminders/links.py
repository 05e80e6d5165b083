"""Patient links: signed, expiring, single-purpose tokens, and what answering one does.

A JSON token with a 160-bit MAC runs to about 85 characters; with the site's
address that leaves no room in a 160-character text. These tokens carry the
claims in 17 bytes (23 URL-safe characters):

    purpose (1 byte) | appointment id (4) | appointment start, Unix seconds (4) | MAC (8)

The MAC is HMAC-SHA256 truncated to 64 bits, under a key derived from
OFFICE_SECRET_KEY for this use only: forging one takes about 2**63 online
guesses. A token is bound to the appointment's start, so a link for the old time
stops working once the visit moves, and it expires when the visit begins.

Only the canonical spelling is read: URL-safe base64 without padding, exactly the
23 characters `make_token` writes (no "=", no "+" or "/", no spare bits set), so
one token has one spelling. Its claims are answered once (`LinkUse` keeps a hash
of the decoded claims, not of the text), whichever key signed it. Links verify
under every key of `Settings.link_keys()`, current first, so a rotated key keeps
the links already sent working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.ledgers import apply_changes, open_work_item, record_change
from office.ledgers.work import Cleared, clear_work
from office.models import Appointment, AppointmentStatus, LinkUse
from office.reminders.notices import enqueue_notices
from office.reminders.visits import ACTIVE
from office.signing import LinkError
from office.workqueue.kinds import CloseReason

__all__ = [
    "ACTOR",
    "LinkAnswer",
    "LinkClaim",
    "LinkError",
    "LinkView",
    "Purpose",
    "answer_link",
    "link_urls",
    "make_token",
    "read_token",
    "token_hash",
    "view_link",
]

Purpose = Literal["confirm", "cancel", "reschedule"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
ACTOR = "patient-link"

_CODES: dict[str, int] = {"confirm": 1, "cancel": 2, "reschedule": 3}
_NAMES: dict[int, Purpose] = {1: "confirm", 2: "cancel", 3: "reschedule"}
_BODY = struct.Struct(">BII")
_MAC_BYTES = 8
_TOKEN_BYTES = _BODY.size + _MAC_BYTES
_TOKEN_CHARS = -(-_TOKEN_BYTES * 4 // 3)  # unpadded base64: 23 characters for 17 bytes
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_CHARS}}}")

INVALID = "this link is not valid"
EXPIRED = "this link has expired"
USED = "this link was already used"
CHANGED = "this appointment has changed since the link was sent"
CANCELLED = "this appointment is already cancelled"


def _key(secret: str) -> bytes:
    # A key of its own, so a token can never double as a webhook signature.
    return hashlib.sha256(b"officeflows patient links v1\x00" + secret.encode()).digest()


def make_token(secret: str, *, purpose: Purpose, appointment_id: int, start: datetime) -> str:
    """A token for one answer about one appointment at one start time."""
    if purpose not in _CODES:
        raise ValueError("purpose must be confirm, cancel or reschedule")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    body = _BODY.pack(_CODES[purpose], appointment_id, int(start.timestamp()))
    mac = hmac.new(_key(secret), body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a genuine token says."""

    purpose: Purpose
    appointment_id: int
    start: datetime


Keys = str | Sequence[str]
"""One key, or `Settings.link_keys()`: the current key first, then the previous one."""


def _keys(secret: Keys) -> tuple[str, ...]:
    return (secret,) if isinstance(secret, str) else tuple(secret)


def _decode(token: str) -> bytes:
    """The token's bytes, when `token` is their one canonical spelling."""
    if not _TOKEN.fullmatch(token):
        raise LinkError(INVALID)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error) as exc:
        raise LinkError(INVALID) from exc
    # Unused low bits in the last character give other spellings of the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise LinkError(INVALID)
    return raw


def read_token(secret: Keys, token: str, *, now: datetime) -> LinkClaim:
    """Check a token's spelling, signature (under any of the keys) and expiry.

    Raises:
        LinkError: forged, malformed, not canonical or expired; the message is safe to show.
    """
    raw = _decode(token)
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not any(
        hmac.compare_digest(hmac.new(_key(key), body, hashlib.sha256).digest()[:_MAC_BYTES], mac)
        for key in _keys(secret)
    ):
        raise LinkError(INVALID)
    code, appointment_id, start_seconds = _BODY.unpack(body)
    if code not in _NAMES:
        raise LinkError(INVALID)
    start = datetime.fromtimestamp(start_seconds, UTC)
    if now >= start:
        raise LinkError(EXPIRED)
    return LinkClaim(_NAMES[code], appointment_id, start)


def token_hash(token: str) -> str:
    """What `LinkUse` stores: a hash of the decoded claims (the token would be a working link).

    The claims, not the text and not the MAC: one answer per purpose, appointment and
    start, whichever spelling or key carried it.
    """
    body = _decode(token)[: _BODY.size]
    return hashlib.sha256(b"officeflows link use v2\x00" + body).hexdigest()


def _used(session: Session, token: str) -> bool:
    # Uses recorded before v2 hashed the token's text (then canonical for every link sent).
    legacy = hashlib.sha256(token.encode("ascii")).hexdigest()
    found = select(LinkUse.id).where(LinkUse.token_hash.in_([token_hash(token), legacy]))
    return session.scalar(found.limit(1)) is not None


def link_urls(
    public_url: str, secret: str, *, appointment_id: int, start: datetime
) -> dict[str, str]:
    """The confirm, cancel and reschedule-request URLs a message carries."""
    base = public_url.rstrip("/")
    return {
        f"{purpose}_url": f"{base}/a/"
        + make_token(secret, purpose=purpose, appointment_id=appointment_id, start=start)
        for purpose in PURPOSES
    }


@dataclass(frozen=True, slots=True)
class LinkView:
    """What the GET page shows: nothing changes by looking."""

    purpose: Purpose
    appointment_id: int
    start: datetime
    location_zone: str
    language: str
    practice_name: str
    phone: str | None
    problem: str | None = None  # why answering would be refused


def view_link(session: Session, secret: Keys, token: str, *, now: datetime) -> LinkView:
    """Read-only: what answering this link would do, or why it cannot.

    Raises:
        LinkError: forged, malformed or expired.
    """
    claim = read_token(secret, token, now=now)
    appointment = session.get(Appointment, claim.appointment_id)
    if appointment is None:
        raise LinkError(INVALID)
    used = _used(session, token)
    location = appointment.location
    return LinkView(
        purpose=claim.purpose,
        appointment_id=appointment.id,
        start=appointment.start_at,
        location_zone=location.timezone,
        language=appointment.patient.language,
        practice_name=location.practice.name,
        phone=location.phone or location.practice.phone,
        problem=USED if used else _problem(appointment, claim),
    )


def _problem(appointment: Appointment, claim: LinkClaim) -> str | None:
    if int(appointment.start_at.timestamp()) != int(claim.start.timestamp()):
        return CHANGED
    if appointment.status is AppointmentStatus.CANCELLED:
        return CANCELLED
    if appointment.status not in ACTIVE:
        return CHANGED
    return None


@dataclass(frozen=True, slots=True)
class LinkAnswer:
    """The outcome of answering a link: done, or refused with a reason safe to show."""

    purpose: Purpose
    appointment_id: int
    language: str
    practice_name: str
    phone: str | None
    refused: str | None = None
    withdrawn: int = 0  # pending reminders withdrawn by a cancellation


def answer_link(
    session: Session, secret: Keys, token: str, *, now: datetime, source: str = "web"
) -> LinkAnswer:
    """Record the patient's answer on the appointment, once per token, with audit entries.

    The caller's transaction commits it; the appointment row is locked first so
    two answers to the same visit are applied one after the other.

    Raises:
        LinkError: forged, malformed or expired.
    """
    claim = read_token(secret, token, now=now)
    appointment = session.get(Appointment, claim.appointment_id, with_for_update=True)
    if appointment is None:
        raise LinkError(INVALID)
    location = appointment.location

    def answered(refused: str | None = None, withdrawn: int = 0) -> LinkAnswer:
        return LinkAnswer(
            purpose=claim.purpose,
            appointment_id=appointment.id,
            language=appointment.patient.language,
            practice_name=location.practice.name,
            phone=location.phone or location.practice.phone,
            refused=refused,
            withdrawn=withdrawn,
        )

    digest = token_hash(token)
    if _used(session, token):
        return answered(USED)
    problem = _problem(appointment, claim)
    if problem is not None:
        return answered(problem)
    use = LinkUse(
        token_hash=digest,
        purpose=claim.purpose,
        appointment_id=appointment.id,
        used_at=now,
    )
    try:
        with session.begin_nested():
            session.add(use)
    except IntegrityError:
        return answered(USED)

    actor_source = f"{source}:link-{claim.purpose}"
    withdrawn = 0
    if claim.purpose == "confirm":
        apply_changes(
            session,
            appointment,
            {
                "status": AppointmentStatus.CONFIRMED,
                "confirmed_at": appointment.confirmed_at or now,
            },
            actor=ACTOR,
            source=actor_source,
        )
    elif claim.purpose == "cancel":
        apply_changes(
            session,
            appointment,
            {"status": AppointmentStatus.CANCELLED, "cancelled_at": now},
            actor=ACTOR,
            source=actor_source,
        )
        session.flush()
        # Withdraws the reminders still pending and queues the cancellation
        # notice, which the next reminder run sends.
        withdrawn = enqueue_notices(session, appointment.id, now=now).total("withdrawn")
        cancelled = Cleared(CloseReason.VISIT_CANCELLED, appointment_id=appointment.id)
        clear_work(session, [cancelled], now=now, actor=ACTOR)
    else:
        record_change(
            session,
            appointment,
            "reschedule_requested",
            None,
            now,
            actor=ACTOR,
            source=actor_source,
            at=now,
        )
        open_work_item(
            session,
            kind="reschedule_request",
            entity="appointment",
            entity_id=appointment.id,
            summary=f"Patient asked to reschedule appointment {appointment.id}; call them back",
            role="front_desk",
            due_at=now,
            detail={"appointment_id": appointment.id},
        )
    session.flush()
    return answered(withdrawn=withdrawn)
