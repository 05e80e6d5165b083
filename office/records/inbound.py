"""The one door from a stored payload's parser to the records: apply, or reject with reasons.

Every source's handler (intake forms, a CSV row, HL7 v2, FHIR) parses its inbox item into
a `RecordBatch` or a `BookingUpdate` and hands it here with the item:

    def handle_hl7(session, item, now):
        return apply_inbound(session, item, parse_hl7(item.body), now=now)

A batch with a problem raises `IntakeRejected` with the reasons (field and row/message,
no values), so the inbox keeps the payload as rejected, replayable after a fix, and
nothing from it is applied. What the change needs next (re-checking eligibility of the
patient's upcoming visits after a coverage change, a booking's check and notices) is in
the returned `Outcome`, which the intake records as follow-ups before anything runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from office.followups.ledger import FollowupCall
from office.intake import IntakeRejected, Outcome
from office.models import InboxItem
from office.records.apply import ApplyOutcome, apply_records
from office.records.updates import BookingUpdate, RecordBatch

__all__ = ["VERIFY", "apply_inbound", "outcome_of"]

VERIFY = "verify_appointment"


def apply_inbound(
    session: Session,
    item: InboxItem,
    parsed: RecordBatch | BookingUpdate | Sequence[RecordBatch | BookingUpdate],
    *,
    now: datetime,
) -> Outcome:
    """Apply what a payload says (one batch or booking, or several in order), all or nothing.

    Raises:
        IntakeRejected: Any part is invalid or names what does not exist; the message
            lists the problems, and the caller's transaction must be rolled back.
    """
    parts = [parsed] if isinstance(parsed, (RecordBatch, BookingUpdate)) else list(parsed)
    outcomes: list[Outcome] = []
    actor = item.source[:80]
    for part in parts:
        if isinstance(part, BookingUpdate):
            from office.bookings import apply_booking_update

            outcomes.append(apply_booking_update(session, part, item=item, now=now))
            continue
        batch = dataclasses.replace(part, inbox_id=item.id)
        (applied,) = apply_records(session, [batch], actor=actor, now=now)
        if applied.problems:
            raise IntakeRejected(applied.reason)
        outcomes.append(outcome_of(applied))
    return _combined(outcomes)


def outcome_of(applied: ApplyOutcome) -> Outcome:
    """The intake's view of an applied batch: the patient, and the visits to check again."""
    patients = applied.patient_ids
    return Outcome(
        "patients" if patients else None,
        patients[0] if patients else None,
        (),
        tuple(FollowupCall(VERIFY, visit) for visit in applied.reverify),
    )


def _combined(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    first = next((o for o in outcomes if o.entity_id is not None), Outcome())
    calls = [call for o in outcomes for call in o.calls()]
    return Outcome(first.entity, first.entity_id, (), tuple(dict.fromkeys(calls)))
