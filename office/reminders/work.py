"""The work items reminders open when a person must act: who to call, what to check, fix."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from office.ledgers import open_work_item

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from office.reminders.visits import Visit

__all__ = [
    "delivery_unknown",
    "email_rejected",
    "no_channel",
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
