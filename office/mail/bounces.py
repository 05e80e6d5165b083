"""Acting on a bounce: find the outbox message it reports on, and what it means for the patient.

The original Message-ID links a DSN to the outbox row that sent it; when the
report carries none, the failed address does (the newest message sent to it). A
permanent failure to the patient's own address marks that address undeliverable,
recorded in the audit ledger, and opens a work item for the front desk to get a
new one. A delay, or a bounce of nothing we sent, goes to front-desk triage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.ledgers import apply_changes, open_work_item
from office.models import OutboxItem, OutboxStatus, Patient

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from office.mail.dsn import DeliveryReport

__all__ = ["ACTOR", "BounceOutcome", "apply_bounce"]

ACTOR = "flow:mail"


@dataclass(frozen=True, slots=True)
class BounceOutcome:
    """What a bounce led to: the outbox row it names, and whether a patient's address failed."""

    outbox_id: int | None
    patient_id: int | None
    undeliverable: bool
    outcome: str  # "address undeliverable", "failed, not a patient address", "delayed", ...


def apply_bounce(session: Session, mail_id: int, report: DeliveryReport) -> BounceOutcome:
    """Link the report to its outbox row and act on a permanent failure (see module doc)."""
    failures = report.failures
    watched = failures or report.recipients
    item = _outbox_item(session, report.original_message_id, [r.address for r in watched])
    if item is None:
        return BounceOutcome(None, None, False, "no outbox message matches")
    if not failures:
        return BounceOutcome(item.id, item.patient_id, False, "delayed or relayed")
    patient = session.get(Patient, item.patient_id) if item.patient_id is not None else None
    failed = {failure.address for failure in failures} | {
        failure.original for failure in failures if failure.original
    }
    address = (patient.email or "").strip().lower() if patient is not None else ""
    if patient is None or address not in failed | {item.recipient.strip().lower()}:
        return BounceOutcome(item.id, item.patient_id, False, "failed, not a patient address")
    if not patient.email_undeliverable:
        apply_changes(
            session,
            patient,
            {"email_undeliverable": True},
            actor=ACTOR,
            source=f"mail:{mail_id}",
        )
    open_work_item(
        session,
        kind="email_bounced",
        entity="patient",
        entity_id=patient.id,
        summary=(
            f"Email to patient {patient.id} bounced (outbox message {item.id}): "
            "ask for a working address"
        ),
        role="front_desk",
        detail={
            "outbox_id": item.id,
            "mail_id": mail_id,
            "status": failures[0].status,
        },
    )
    return BounceOutcome(item.id, patient.id, True, "address undeliverable")


def _outbox_item(
    session: Session, message_id: str | None, addresses: list[str]
) -> OutboxItem | None:
    if message_id:
        item = session.scalar(
            select(OutboxItem).where(OutboxItem.message_id == message_id.strip()).limit(1)
        )
        if item is not None:
            return item
    if not addresses:
        return None
    return session.scalar(
        select(OutboxItem)
        .where(
            OutboxItem.recipient.in_(addresses),
            OutboxItem.status.in_((OutboxStatus.SENT, OutboxStatus.UNKNOWN)),
        )
        .order_by(OutboxItem.sent_at.desc(), OutboxItem.id.desc())
        .limit(1)
    )
