"""Deciding a held record change: approve or reject, by a person, audited, its work item closed.

- record review, stale update: approve applies the proposed change (as staff, so the
  policy and the version it was made against no longer hold it); reject drops it.
- possible duplicate: approve says "the same patient" and applies the incoming record to
  the candidate (the best-scored one, or the one the person names); reject says "not a
  duplicate": the incoming record becomes a new patient, and the pair of patients is
  remembered, so the next update naming them is not asked about again.
- merge request (HL7 A40): approve retires the merged record into the survivor — the
  survivor's values win, the retired one only fills its blanks, the retired record is kept
  with `merged_into_id` (never deleted); reject leaves both as they are.

The office board and `office records review` both come here; nothing here commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.followups.ledger import FollowupCall, record_followups
from office.ledgers import apply_changes, close_work_item
from office.models import (
    DistinctPatients,
    InboxItem,
    Patient,
    PatientIdentifier,
    RecordReview,
    ReviewStatus,
    WorkItem,
    WorkStatus,
)
from office.records.apply import apply_records
from office.records.plan import ReviewKind
from office.records.store import LINKED_MRN_SYSTEM
from office.records.updates import (
    PATIENT_FIELDS,
    Identifier,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Submitter,
    from_json,
)
from office.records.write import REVIEW_ENTITY

__all__ = [
    "CandidateLine",
    "ChangeLine",
    "ReviewDecision",
    "ReviewError",
    "approve_review",
    "candidate_lines",
    "change_lines",
    "decide_review",
    "pending_reviews",
    "reject_review",
]

# Bookkeeping inside a held update, not something a person decides on.
_NOT_SHOWN = frozenset({"mrn", "identifiers", "expected_version", "occurred_at"})


class ReviewError(ValueError):
    """The review cannot be decided as asked; the message says why (no values)."""


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """What a decision did: the review, its new status, the patient it ended on."""

    review_id: int
    status: ReviewStatus
    patient_id: int | None
    changed: tuple[str, ...] = ()
    reverify: tuple[int, ...] = ()  # upcoming visits whose coverage changed
    followup_ids: tuple[int, ...] = ()  # their eligibility checks, recorded to run


def pending_reviews(
    session: Session, *, kind: str | None = None, limit: int = 100
) -> Sequence[RecordReview]:
    """Reviews waiting for a person, oldest first."""
    query = select(RecordReview).where(RecordReview.status == ReviewStatus.PENDING)
    if kind is not None:
        query = query.where(RecordReview.kind == kind)
    return session.scalars(query.order_by(RecordReview.id).limit(limit)).all()


def approve_review(
    session: Session,
    review_id: int,
    *,
    by: str,
    now: datetime,
    patient_id: int | None = None,
    note: str | None = None,
) -> ReviewDecision:
    """Apply what the review holds (to `patient_id` for a possible duplicate, if given)."""
    review = _pending(session, review_id)
    kind = ReviewKind(review.kind)
    if kind is ReviewKind.MERGE_REQUEST:
        decision = _merge(session, review, by=by, now=now)
    else:
        target = patient_id if kind is ReviewKind.POSSIBLE_DUPLICATE else review.patient_id
        if patient_id is not None and kind is not ReviewKind.POSSIBLE_DUPLICATE:
            raise ReviewError("--patient is only for a possible duplicate")
        if target is None:
            target = review.patient_id
        if kind is ReviewKind.POSSIBLE_DUPLICATE and target not in _candidates(review):
            raise ReviewError(f"patient {target} is not one of this review's candidates")
        decision = _apply(session, review, target, by=by, now=now, force_new=False)
    _decide(session, review, ReviewStatus.APPROVED, decision.patient_id, by, now, note)
    return dataclasses.replace(decision, status=ReviewStatus.APPROVED)


def reject_review(
    session: Session, review_id: int, *, by: str, now: datetime, note: str | None = None
) -> ReviewDecision:
    """Drop what the review holds; for a possible duplicate, create the new patient and
    remember that they are not the candidates."""
    review = _pending(session, review_id)
    decision = ReviewDecision(review.id, ReviewStatus.REJECTED, review.patient_id)
    if review.kind == ReviewKind.POSSIBLE_DUPLICATE.value:
        decision = _apply(session, review, None, by=by, now=now, force_new=True)
        new_id = decision.patient_id
        assert new_id is not None
        for other in _candidates(review):
            low, high = sorted((new_id, other))
            session.merge(
                DistinctPatients(
                    patient_id=low,
                    other_patient_id=high,
                    decided_by=by[:80],
                    decided_at=now,
                    review_id=review.id,
                )
            )
    _decide(session, review, ReviewStatus.REJECTED, decision.patient_id, by, now, note)
    return dataclasses.replace(decision, status=ReviewStatus.REJECTED)


def decide_review(
    session: Session,
    review_id: int,
    *,
    approve: bool,
    by: str,
    now: datetime,
    patient_id: int | None = None,
    note: str | None = None,
) -> ReviewDecision:
    """Approve or reject, as the board and `office records review` do: a coverage the
    person approved re-checks the patient's upcoming visits, recorded as follow-ups."""
    if approve:
        decision = approve_review(
            session, review_id, by=by, now=now, patient_id=patient_id, note=note
        )
    else:
        decision = reject_review(session, review_id, by=by, now=now, note=note)
    calls = [FollowupCall("verify_appointment", visit) for visit in decision.reverify]
    recorded = record_followups(session, None, calls, now=now)
    return dataclasses.replace(decision, followup_ids=tuple(recorded))


@dataclass(frozen=True, slots=True)
class ChangeLine:
    """One field of a held change as a person compares it: on file, then proposed."""

    field: str
    on_file: str
    proposed: str


@dataclass(frozen=True, slots=True)
class CandidateLine:
    """A patient the held record may be (or, for a merge, survives or is retired), with
    the match score and each field's part of it."""

    patient_id: int
    mrn: str
    name: str
    born: str
    score: str
    why: str
    values: dict[str, str]  # as on file, for each field of the held change


def change_lines(review: RecordReview) -> list[ChangeLine]:
    """The held change field by field: the fields it would change first, then the rest it
    carries; coverages as "coverage N.field". An incoming record that may be a duplicate
    shows its own MRN too: it is one of the things to compare."""
    proposed = _flat(review.proposed)
    names = dict.fromkeys([*map(str, review.fields), *proposed])
    hidden = _NOT_SHOWN - {"mrn"} if review.kind == ReviewKind.POSSIBLE_DUPLICATE else _NOT_SHOWN
    return [
        ChangeLine(name, _shown(review.current.get(name)), _shown(proposed.get(name)))
        for name in names
        if name not in hidden
    ]


def candidate_lines(session: Session, review: RecordReview) -> list[CandidateLine]:
    """The review's candidates as they are on file now, in the order the match ranked them,
    with their values for the fields the held change carries (side by side with it)."""
    fields = [line.field for line in change_lines(review)]
    ids = _candidates(review)
    patients = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(ids)))}
    lines = []
    for candidate in review.candidates:
        patient = patients.get(int(candidate.get("patient_id") or 0))
        if patient is None:
            continue
        parts = candidate.get("parts") or {}
        lines.append(
            CandidateLine(
                patient.id,
                patient.mrn or "",
                f"{patient.first_name} {patient.last_name}",
                str(patient.date_of_birth or ""),
                str(candidate.get("total", candidate.get("role", ""))),
                ", ".join(f"{name} {part}" for name, part in parts.items()),
                {
                    name: _shown(getattr(patient, name))
                    if name in PATIENT_FIELDS or name == "mrn"
                    else ""
                    for name in fields
                },
            )
        )
    return lines


# --- inside ----------------------------------------------------------------------------


def _pending(session: Session, review_id: int) -> RecordReview:
    review = session.get(RecordReview, review_id, with_for_update=True)
    if review is None:
        raise ReviewError(f"review {review_id} does not exist")
    if review.status is not ReviewStatus.PENDING:
        raise ReviewError(f"review {review_id} is already {review.status.value}")
    return review


def _candidates(review: RecordReview) -> list[int]:
    return [int(c["patient_id"]) for c in review.candidates if c.get("patient_id") is not None]


def _apply(
    session: Session,
    review: RecordReview,
    patient_id: int | None,
    *,
    by: str,
    now: datetime,
    force_new: bool,
) -> ReviewDecision:
    update = _as_decided(from_json(review.proposed))
    if patient_id is not None:
        mrn = session.scalar(select(Patient.mrn).where(Patient.id == patient_id))
        if mrn is None:
            raise ReviewError(f"patient {patient_id} does not exist")
        extra: tuple[Identifier, ...] = ()
        if update.mrn and update.mrn != mrn:
            extra = (Identifier(LINKED_MRN_SYSTEM, update.mrn),)
        update = dataclasses.replace(update, mrn=mrn, identifiers=(*update.identifiers, *extra))
    batch = RecordBatch(
        (update,),
        _source_kind(session, review),
        submitter=Submitter.STAFF,
        inbox_id=review.inbox_id,
        label=f"review {review.id}",
    )
    (outcome,) = apply_records(
        session, [batch], actor=f"staff:{by}"[:80], now=now, force_new=force_new
    )
    if outcome.problems:
        raise ReviewError(outcome.reason)
    results = outcome.results
    if results and results[0].review_ids:
        # Approving never opens another review: anything held again is a conflict to redo.
        raise ReviewError(f"review {review.id}: the record changed meanwhile; decide again")
    changed = tuple(name for r in results for name in r.changed)
    return ReviewDecision(
        review.id,
        ReviewStatus.PENDING,
        outcome.patient_ids[0] if outcome.patient_ids else patient_id,
        changed,
        outcome.reverify,
    )


def _as_decided(update: PatientUpdate) -> PatientUpdate:
    """The held update as a person approves it: no longer tied to the version it was made
    against nor ordered by when its source made it."""
    coverages = tuple(dataclasses.replace(c, expected_version=None) for c in update.coverages)
    return dataclasses.replace(update, expected_version=None, occurred_at=None, coverages=coverages)


# What the held payload was, from its inbox source's prefix (shown and audited only).
_KINDS = {"row": SourceKind.CSV, "file": SourceKind.CSV, "hl7": SourceKind.HL7}


def _source_kind(session: Session, review: RecordReview) -> SourceKind:
    source = session.scalar(select(InboxItem.source).where(InboxItem.id == review.inbox_id))
    prefix, _, rest = (source or "").partition(":")
    if prefix == "webhook":
        return SourceKind.FORM if rest == "intake-form" else SourceKind.FHIR
    return _KINDS.get(prefix, SourceKind.FHIR if prefix == "fhir" else SourceKind.CSV)


def _merge(session: Session, review: RecordReview, *, by: str, now: datetime) -> ReviewDecision:
    retired_ids = [int(c["patient_id"]) for c in review.candidates if c.get("role") == "retired"]
    if review.patient_id is None or len(retired_ids) != 1:
        raise ReviewError(f"review {review.id} does not name a survivor and one retired record")
    survivor = session.get(Patient, review.patient_id, with_for_update=True)
    retired = session.get(Patient, retired_ids[0], with_for_update=True)
    if survivor is None or retired is None:
        raise ReviewError(f"review {review.id}: a patient it names no longer exists")
    if retired.merged_into_id is not None or survivor.merged_into_id is not None:
        raise ReviewError(f"review {review.id}: one of the records is already merged")
    audit = {"actor": f"staff:{by}"[:80], "source": f"review:{review.id}"}
    blanks: dict[str, Any] = {
        name: getattr(retired, name)
        for name in PATIENT_FIELDS
        if getattr(survivor, name) in (None, "") and getattr(retired, name) not in (None, "")
    }
    changed = apply_changes(session, survivor, blanks, **audit)
    if changed:
        survivor.version += 1
    apply_changes(session, retired, {"merged_into_id": survivor.id}, **audit)
    # The retired record's MRN keeps finding the survivor (through merged_into_id), and its
    # sender ids move over, so a message naming them lands on the one record.
    for identifier in session.scalars(
        select(PatientIdentifier).where(PatientIdentifier.patient_id == retired.id)
    ):
        apply_changes(session, identifier, {"patient_id": survivor.id}, **audit)
    return ReviewDecision(review.id, ReviewStatus.PENDING, survivor.id, tuple(changed))


def _decide(
    session: Session,
    review: RecordReview,
    status: ReviewStatus,
    patient_id: int | None,
    by: str,
    now: datetime,
    note: str | None,
) -> None:
    apply_changes(
        session,
        review,
        {
            "status": status,
            "decided_by": by[:80],
            "decided_at": now,
            "decision_note": note,
            "result_patient_id": patient_id,
        },
        actor=f"staff:{by}"[:80],
        source=f"review:{review.id}",
    )
    item_id = session.scalar(
        select(WorkItem.id).where(
            WorkItem.entity == REVIEW_ENTITY,
            WorkItem.entity_id == review.id,
            WorkItem.status == WorkStatus.OPEN,
        )
    )
    if item_id is not None:
        close_work_item(
            session,
            item_id,
            by=by,
            note=f"review {status.value}",
            source=f"review:{review.id}",
            now=now,
        )


def _flat(proposed: dict[str, Any]) -> dict[str, Any]:
    """The proposed update's fields, its coverages as "coverage N.field"."""
    flat = {k: v for k, v in proposed.items() if k not in {"coverages", "consents"}}
    for index, coverage in enumerate(proposed.get("coverages", []), start=1):
        rank = coverage.get("rank", index)
        for name, value in coverage.items():
            if name != "rank":
                flat[f"coverage {rank}.{name}"] = value
    return flat


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and value.get("clear") is True:
        return "(delete)"
    return str(value)
