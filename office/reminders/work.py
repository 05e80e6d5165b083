"""The work items reminders open when a person must act: who to call, what to check, fix."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from office.contacts import is_recipient_reason
from office.ledgers import open_work_item
from office.reminders.policy import MESSAGE_CHANNELS, route

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from office.reminders.visits import Visit

__all__ = [
    "bad_recipients",
    "delivery_unknown",
    "email_rejected",
    "message_not_built",
    "no_channel",
    "recipient_invalid",
    "send_refused",
    "settings_invalid",
]


def no_channel(session: Session, visit: Visit) -> None:
    """No usable email or text: the front desk calls the patient instead."""
    open_work_item(
        session,
        kind="reminder_no_channel",
        entity="appointment",
        entity_id=visit.appointment_id,
        summary=(
            f"No usable email or text for the patient of appointment {visit.appointment_id}: "
            "call to remind them"
        ),
        role="front_desk",
        due_at=visit.start - timedelta(days=1),
        detail={"appointment_id": visit.appointment_id, "patient_id": visit.patient_id},
        patient_id=visit.patient_id,
    )


def recipient_invalid(
    session: Session, patient_id: int, *, appointment_id: int | None, reasons: list[str]
) -> None:
    """The patient's stored email or mobile number is not one plain address: fix the record."""
    open_work_item(
        session,
        kind="recipient_invalid",
        entity="patient",
        entity_id=patient_id,
        summary=f"Email address or mobile number of patient {patient_id} cannot be used",
        role="front_desk",
        detail={"reasons": sorted(set(reasons)), "patient_id": patient_id},
        patient_id=patient_id,
        visits=() if appointment_id is None else (appointment_id,),
    )


def bad_recipients(session: Session, visit: Visit) -> None:
    """Open `recipient_invalid` when the visit's patient has an address no message may use."""
    found = (route(visit.contact, channel).reason for channel in MESSAGE_CHANNELS)
    reasons = [reason for reason in found if reason and is_recipient_reason(reason)]
    if reasons:
        recipient_invalid(
            session, visit.patient_id, appointment_id=visit.appointment_id, reasons=reasons
        )


def message_not_built(session: Session, item_id: int, reason: str) -> None:
    """A message could not be built from its row; it was skipped and the patient not told."""
    open_work_item(
        session,
        kind="message_not_built",
        entity="outbox_item",
        entity_id=item_id,
        summary=f"Outbox message {item_id} could not be built; it was skipped",
        role="office_manager",
        detail={"outbox_id": item_id, "reason": reason},
    )


def settings_invalid(session: Session, type_id: int, problem: str) -> None:
    """An appointment type's reminder offsets cannot be read: its visits get none until fixed."""
    open_work_item(
        session,
        kind="reminder_settings_invalid",
        entity="appointment_type",
        entity_id=type_id,
        summary=f"Reminder settings of appointment type {type_id} cannot be read",
        role="office_manager",
        detail={"problem": problem},
    )


def delivery_unknown(session: Session, item_id: int) -> None:
    """A message may or may not have arrived; a person decides before it goes again."""
    open_work_item(
        session,
        kind="reminder_delivery_unknown",
        entity="outbox_item",
        entity_id=item_id,
        summary=(
            f"Outbox message {item_id} may or may not have been delivered; "
            "check with the patient before sending it again"
        ),
        role="front_desk",
        detail={"outbox_id": item_id},
    )


def send_refused(session: Session, item_id: int) -> None:
    """The transport refused a message for good."""
    open_work_item(
        session,
        kind="reminder_send_failed",
        entity="outbox_item",
        entity_id=item_id,
        summary=f"Outbox message {item_id} was refused for good; see its error",
        role="front_desk",
        detail={"outbox_id": item_id},
    )


def email_rejected(session: Session, patient_id: int, item_id: int) -> None:
    """The mail server refused the patient's address: the front desk asks for a new one."""
    open_work_item(
        session,
        kind="email_rejected",
        entity="patient",
        entity_id=patient_id,
        summary=f"Email address rejected for patient {patient_id}: update it",
        role="front_desk",
        detail={"outbox_id": item_id},
    )
