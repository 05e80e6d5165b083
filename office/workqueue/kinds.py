"""The catalog of work-item kinds: what each problem is, who owns it, what to do about it.

One `Kind` per problem any flow can raise. The ledger reads it when it opens an item
(priority, owner role, whether one item covers the patient or the visit, when it is due)
and when a cause clears (which causes close it); the board, the CLI and the digest read
it for the title and the next step. Adding a kind is one `Kind(...)` entry in `KINDS`.

The catalog is code, not a staff-editable file: a kind's subject level and the causes
that close it decide what the ledger does, and a typo there would silently change when
items close. What a practice tunes is in its settings: which note kinds it wants as
tasks (`OFFICE_QUEUE_NOTE_KINDS_AS_TASKS`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from office.models import WorkPriority

__all__ = [
    "AUTOMATIC",
    "KINDS",
    "MANAGER_ROLE",
    "PRIORITY_LABELS",
    "ROLE_LABELS",
    "CloseReason",
    "Kind",
    "Subject",
    "kind_of",
    "note_kinds",
    "unknown_notes",
]

MANAGER_ROLE: Final = "office_manager"
FRONT_DESK: Final = "front_desk"
BILLING: Final = "billing"


class Subject(StrEnum):
    """What one item is about, and so what "one open item per problem" counts."""

    VISIT = "visit"  # one item per visit
    PATIENT = "patient"  # one item per patient, listing every affected visit
    RECORD = "record"  # the record the flow names (a message, a setting, a mail)


class CloseReason(StrEnum):
    """Why an item closed: a person's decision, or the cause that went away."""

    DONE = "done"
    DISMISSED = "dismissed"
    CHECK_CLEAN = "check_clean"  # a later eligibility check no longer finds the problem
    VISIT_CANCELLED = "visit_cancelled"
    VISIT_PAST = "visit_past"
    BOOKING_CONFIRMED = "booking_confirmed"  # a new or moved booking for the patient
    MERGED = "merged"  # folded into the patient's one item (migration 0005)


AUTOMATIC: Final = frozenset(
    {
        CloseReason.CHECK_CLEAN,
        CloseReason.VISIT_CANCELLED,
        CloseReason.VISIT_PAST,
        CloseReason.BOOKING_CONFIRMED,
    }
)
_VISIT_GONE: Final = frozenset({CloseReason.VISIT_CANCELLED, CloseReason.VISIT_PAST})
_CHECKED: Final = _VISIT_GONE | {CloseReason.CHECK_CLEAN}

PRIORITY_LABELS: Final[dict[WorkPriority, str]] = {
    WorkPriority.BLOCKER: "Blocks the visit",
    WorkPriority.ACTION: "Needs action before the visit",
    WorkPriority.INFO: "For information",
}

ROLE_LABELS: Final[dict[str, str]] = {
    MANAGER_ROLE: "Office manager",
    FRONT_DESK: "Front desk",
    BILLING: "Billing",
    "medical_assistant": "Medical assistants",
    "compliance": "Compliance",
    "it": "IT",
}


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of problem.

    Args:
        name: The work item's `kind`.
        title: What is wrong, in a few plain words ("Coverage not active").
        priority: Blocks the visit, needs action before it, or for information.
        role: The role that owns it.
        next_step: What to do, in plain language, for the person who picks it up.
        subject: One item per visit, per patient (listing the visits), or per record.
        note: Information shown on the visit, not an open task (unless the practice's
            settings make it one).
        closes_when: The causes that close it by themselves when they clear.
        due_before: How long before its first affected visit it must be done.
        due_within: For an item with no visit: how long after it was raised.
    """

    name: str
    title: str
    priority: WorkPriority
    role: str
    next_step: str
    subject: Subject = Subject.VISIT
    note: bool = False
    closes_when: frozenset[CloseReason] = _VISIT_GONE
    due_before: timedelta = timedelta(days=1)
    due_within: timedelta | None = timedelta(days=1)


BLOCKER, ACTION, INFO = WorkPriority.BLOCKER, WorkPriority.ACTION, WorkPriority.INFO

KINDS: Final[tuple[Kind, ...]] = (
    # --- eligibility ----------------------------------------------------------------
    Kind(
        "not_active",
        "Coverage not active on the visit date",
        BLOCKER,
        FRONT_DESK,
        "Call the patient for their current insurance card, update the coverage and "
        "re-check eligibility; if they have none, explain self-pay before the visit.",
        subject=Subject.PATIENT,
        closes_when=_CHECKED,
    ),
    Kind(
        "authorization_required",
        "Prior authorization required",
        BLOCKER,
        FRONT_DESK,
        "Request the authorization from the payer and record its number; reschedule "
        "if it cannot be in place before the visit.",
        closes_when=_CHECKED,
        due_before=timedelta(days=3),
    ),
    Kind(
        "referral_needed",
        "Referral needed (HMO)",
        BLOCKER,
        FRONT_DESK,
        "Ask the patient's primary care provider for a referral covering the visits listed, "
        "or have the patient make this practice their PCP with the plan.",
        subject=Subject.PATIENT,
        closes_when=_CHECKED,
        due_before=timedelta(days=2),
    ),
    Kind(
        "service_not_covered",
        "Service not covered",
        BLOCKER,
        FRONT_DESK,
        "Tell the patient the plan does not cover this visit type and agree self-pay or "
        "another visit type.",
        closes_when=_CHECKED,
    ),
    Kind(
        "fix_patient_data",
        "The payer cannot match the patient",
        ACTION,
        FRONT_DESK,
        "Check the member id, name and date of birth against the insurance card, correct "
        "registration and re-check eligibility.",
        subject=Subject.PATIENT,
        closes_when=_CHECKED,
    ),
    Kind(
        "ambiguous_match",
        "The payer found more than one member",
        ACTION,
        FRONT_DESK,
        "Confirm the member id from the insurance card, correct it and re-check eligibility.",
        subject=Subject.PATIENT,
        closes_when=_CHECKED,
    ),
    Kind(
        "unverified",
        "Eligibility could not be verified",
        ACTION,
        FRONT_DESK,
        "Verify coverage on the payer's portal or by phone and note what they said.",
        subject=Subject.PATIENT,
        closes_when=_CHECKED,
    ),
    Kind(
        "payer_corrected_data",
        "The payer corrected the patient's details",
        ACTION,
        FRONT_DESK,
        "Compare registration with the payer's answer and update the patient's details.",
        subject=Subject.PATIENT,
    ),
    Kind(
        "copay_changed",
        "Visit copay changed",
        ACTION,
        FRONT_DESK,
        "Update the copay on file and tell the patient the new amount before the visit.",
        subject=Subject.PATIENT,
    ),
    Kind(
        "coordination_of_benefits",
        "Another payer reported",
        ACTION,
        BILLING,
        "Ask the patient which plan is primary, update the coverage order and re-check.",
        subject=Subject.PATIENT,
        closes_when=frozenset({CloseReason.CHECK_CLEAN, CloseReason.VISIT_CANCELLED}),
    ),
    Kind(
        "provider_setup",
        "Payer rejected the provider or payer setup",
        ACTION,
        BILLING,
        "Check the provider's NPI and enrollment with this payer and the payer id on file.",
        closes_when=frozenset({CloseReason.CHECK_CLEAN, CloseReason.VISIT_CANCELLED}),
    ),
    Kind(
        "plan_ending",
        "Plan ends within 30 days",
        INFO,
        FRONT_DESK,
        "At check-in, ask whether the patient's insurance changes at the plan's end.",
        subject=Subject.PATIENT,
        note=True,
        closes_when=_CHECKED,
    ),
    Kind(
        "high_deductible",
        "Deductible remaining above the threshold",
        INFO,
        BILLING,
        "Give the patient a cost estimate at check-in.",
        subject=Subject.PATIENT,
        note=True,
        closes_when=_CHECKED,
    ),
    # --- reminders and patient links ---------------------------------------------------
    Kind(
        "reminder_no_channel",
        "No way to send reminders",
        ACTION,
        FRONT_DESK,
        "Call the patient to remind them, and ask for an email address or mobile number.",
        subject=Subject.PATIENT,
    ),
    Kind(
        "reschedule_request",
        "Patient asked to reschedule",
        ACTION,
        FRONT_DESK,
        "Call the patient back and book a new time.",
        closes_when=_VISIT_GONE | {CloseReason.BOOKING_CONFIRMED},
        due_before=timedelta(0),
    ),
    Kind(
        "email_rejected",
        "Patient's email address rejected",
        ACTION,
        FRONT_DESK,
        "Ask the patient for a working email address and update it.",
        subject=Subject.PATIENT,
        due_within=timedelta(days=2),
    ),
    Kind(
        "recipient_invalid",
        "An email address or mobile number cannot be used",
        ACTION,
        FRONT_DESK,
        "Correct the address on the record (one plain email address or one mobile number, "
        "nothing else); messages to it are skipped until then.",
        subject=Subject.PATIENT,
        due_within=timedelta(days=2),
    ),
    Kind(
        "message_not_built",
        "A message could not be built",
        ACTION,
        MANAGER_ROLE,
        "Read the reason on the message; it was skipped and the patient was not told.",
        subject=Subject.RECORD,
    ),
    Kind(
        "reminder_delivery_unknown",
        "A reminder may not have arrived",
        ACTION,
        FRONT_DESK,
        "Check with the patient whether it arrived before sending it again.",
        subject=Subject.RECORD,
    ),
    Kind(
        "reminder_send_failed",
        "A reminder was refused",
        ACTION,
        FRONT_DESK,
        "Read the error on the message and contact the patient another way.",
        subject=Subject.RECORD,
    ),
    Kind(
        "reminder_settings_invalid",
        "Reminder settings cannot be read",
        ACTION,
        MANAGER_ROLE,
        "Fix the reminder times of this appointment type; its visits get none until then.",
        subject=Subject.RECORD,
    ),
    # --- mail ------------------------------------------------------------------------
    Kind(
        "email_bounced",
        "Email to the patient bounced",
        ACTION,
        FRONT_DESK,
        "Ask the patient for a working email address and update it.",
        subject=Subject.PATIENT,
        due_within=timedelta(days=2),
    ),
    Kind(
        "mail_triage",
        "Mail matched no routing rule",
        ACTION,
        FRONT_DESK,
        "Read the message and send it to the right queue.",
        subject=Subject.RECORD,
    ),
    Kind(
        "mail_quarantined",
        "Mail could not be read",
        ACTION,
        FRONT_DESK,
        "Open the kept original and decide what to do with it.",
        subject=Subject.RECORD,
    ),
    Kind(
        "mail_send_failed",
        "Outgoing mail was refused",
        ACTION,
        MANAGER_ROLE,
        "Read the error on the message; fix the address or send it another way.",
        subject=Subject.RECORD,
    ),
    Kind(
        "mail_send_unknown",
        "Outgoing mail may not have arrived",
        ACTION,
        MANAGER_ROLE,
        "Check whether it arrived before sending it again.",
        subject=Subject.RECORD,
    ),
    # --- records in (office.records; a person decides, so none closes by itself) ----------
    Kind(
        "possible_duplicate",
        "Incoming record may be a patient already on file",
        ACTION,
        FRONT_DESK,
        "Compare the scores and the records side by side: approve if it is the same "
        "patient, reject if not (the decision is remembered).",
        subject=Subject.RECORD,
        closes_when=frozenset(),
    ),
    Kind(
        "record_review",
        "Patient changed a field staff must check",
        ACTION,
        FRONT_DESK,
        "Check the change against the patient's ID or insurance card, then approve or reject.",
        subject=Subject.RECORD,
        closes_when=frozenset(),
    ),
    Kind(
        "stale_update",
        "Update older than the record it would change",
        ACTION,
        FRONT_DESK,
        "Compare the update with the record as it is now: approve to apply it anyway, "
        "reject to keep the record.",
        subject=Subject.RECORD,
        closes_when=frozenset(),
    ),
    Kind(
        "merge_request",
        "Sending system merged two patient records",
        ACTION,
        MANAGER_ROLE,
        "Confirm both records are the same person, then approve the merge; reject otherwise.",
        subject=Subject.RECORD,
        closes_when=frozenset(),
    ),
    # --- follow-ups (office.followups) -------------------------------------------------------
    Kind(
        "followup_failed",
        "A follow-up after a booking or record change kept failing",
        ACTION,
        FRONT_DESK,
        "Re-check eligibility from the visit, or send the notice by hand; the error kind is "
        "on the item.",
    ),
)

_BY_NAME: Final[dict[str, Kind]] = {kind.name: kind for kind in KINDS}


def kind_of(name: str, *, role: str | None = None) -> Kind:
    """The catalog's entry for `name`; a kind not registered yet gets a plain task entry.

    An unregistered kind still opens an item (for `role`, needing action), so a flow is
    never stopped by the catalog; `tests/workqueue/test_kinds.py` fails until it is added.
    """
    found = _BY_NAME.get(name)
    if found is not None:
        return found
    return Kind(
        name,
        name.replace("_", " ").capitalize(),
        ACTION,
        role or MANAGER_ROLE,
        "See the summary.",
        subject=Subject.RECORD,
    )


def note_kinds(as_tasks: Collection[str] = ()) -> frozenset[str]:
    """The kinds shown as notes on the visit: the catalog's notes, less those made tasks."""
    return frozenset(kind.name for kind in KINDS if kind.note and kind.name not in as_tasks)


def unknown_notes(names: Iterable[str]) -> list[str]:
    """The names among `names` that are not note kinds (for the settings' check)."""
    notes = note_kinds()
    return sorted(name for name in names if name not in notes)
