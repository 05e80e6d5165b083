"""Applying normalized record updates: validate, match, apply partially, audit, hold for review.

`apply_record(session, batch, actor=, now=)` for one message or form; `apply_records` for
many (a file's rows) in a few statements per kind of row — the same code, so a single
message and a 10,000-row file follow one path. Each batch is all or nothing: a batch with
a problem (invalid, unknown payer, a new patient without a name) changes nothing and its
outcome lists the reasons. Otherwise:

- the patient is the one the MRN or sender id names; else candidates with the same date
  of birth are scored (`office.records.match`): certain → this patient; possible → a
  "possible duplicate" review with the scores; none → a new patient;
- a field the update leaves out keeps its value; `CLEAR` deletes it;
- an update made against an older version of the patient or coverage, or older than the
  last one applied, becomes a "stale update" review: it never overwrites;
- fields the review policy holds for the submitter become a "record review" with a diff;
- every changed field gets an audit entry (before, after, actor, source inbox item);
- a coverage change lists the patient's upcoming visits, to check eligibility again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from office.records.match import Score
from office.records.plan import Buffer, Draft, Options, plan_batch
from office.records.policy import ReviewPolicy, load_policy
from office.records.store import Store, load_payers, load_store
from office.records.updates import RecordBatch
from office.records.validate import Problem, check_batch
from office.records.write import write_buffer

__all__ = [
    "ApplyOutcome",
    "ApplyStatus",
    "RecordResult",
    "apply_record",
    "apply_records",
]


class ApplyStatus(StrEnum):
    """What became of a batch, as the import's counts show it."""

    APPLIED = "applied"  # something changed (some fields may also wait for review)
    UNCHANGED = "unchanged"  # the records already said this
    FOR_REVIEW = "for_review"  # held for a person: stale, policy, merge
    POSSIBLE_DUPLICATE = "possible_duplicate"
    REJECTED = "rejected"  # invalid: nothing applied


@dataclass(frozen=True, slots=True)
class RecordResult:
    """One record of a batch: the patient, the fields changed, the reviews opened."""

    patient_id: int | None
    created: bool
    changed: tuple[str, ...]
    review_ids: tuple[int, ...]
    review_kinds: tuple[str, ...]
    scores: tuple[Score, ...]
    reverify: tuple[int, ...]  # upcoming appointments whose coverage changed


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What one batch did; `problems` is set (and nothing applied) when it was rejected."""

    where: str
    results: tuple[RecordResult, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    @property
    def status(self) -> ApplyStatus:
        if self.problems:
            return ApplyStatus.REJECTED
        kinds = [kind for r in self.results for kind in r.review_kinds]
        if "possible_duplicate" in kinds:
            return ApplyStatus.POSSIBLE_DUPLICATE
        for r in self.results:
            if r.changed or r.created:
                return ApplyStatus.APPLIED
        return ApplyStatus.FOR_REVIEW if kinds else ApplyStatus.UNCHANGED

    @property
    def reason(self) -> str:
        """The problems in one line (fields and where, never values)."""
        return "; ".join(str(p) for p in self.problems)

    @property
    def patient_ids(self) -> tuple[int, ...]:
        return tuple(r.patient_id for r in self.results if r.patient_id is not None)

    @property
    def review_ids(self) -> tuple[int, ...]:
        return tuple(i for r in self.results for i in r.review_ids)

    @property
    def reverify(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(a for r in self.results for a in r.reverify))


def apply_record(
    session: Session,
    batch: RecordBatch,
    *,
    actor: str,
    now: datetime,
    policy: ReviewPolicy | None = None,
) -> ApplyOutcome:
    """Validate, match and apply one batch (a message, a form, a row)."""
    return apply_records(session, [batch], actor=actor, now=now, policy=policy)[0]


def apply_records(
    session: Session,
    batches: Sequence[RecordBatch],
    *,
    actor: str,
    now: datetime,
    policy: ReviewPolicy | None = None,
    force_new: bool = False,
) -> list[ApplyOutcome]:
    """`apply_record` for many batches at once, in order; one outcome per batch.

    Args:
        session: The caller's unit of work; nothing is committed here.
        batches: The payloads, applied in order (a later one sees an earlier one's result).
        actor: Who applies them ("webhook:intake-form", "staff:4", "cli").
        now: The instant written to every row and audit entry.
        policy: The review policy (templates/records-review.yaml by default).
        force_new: Create a new patient instead of matching (a person said "not a duplicate").
    """
    options = Options(actor=actor, now=now, policy=policy or load_policy(), force_new=force_new)
    store = Store()
    load_payers(session, store)
    checked: list[tuple[RecordBatch, list[Problem]]] = [
        check_batch(batch, today=now.date(), mbi_payers=store.mbi_payers) for batch in batches
    ]
    load_store(session, [b for b, problems in checked if not problems], store)
    buffer = Buffer()
    planned: list[tuple[str, list[Draft], list[Problem]]] = []
    for batch, problems in checked:
        if problems:
            planned.append((batch.where, [], problems))
            continue
        drafts, found = plan_batch(store, batch, options, buffer)
        planned.append((batch.where, drafts, found))
    upcoming = write_buffer(session, buffer, now=now)
    return [
        ApplyOutcome(where, tuple(_result(d, upcoming) for d in drafts), tuple(problems))
        for where, drafts, problems in planned
    ]


def _result(draft: Draft, upcoming: dict[int, list[int]]) -> RecordResult:
    patient_id = draft.row.id if draft.row is not None else None
    visits = upcoming.get(patient_id, ()) if draft.coverage_changed and patient_id else ()
    reviews = draft.reviews
    return RecordResult(
        patient_id=patient_id,
        created=draft.created,
        changed=tuple(draft.changed),
        review_ids=tuple([r.id for r in reviews if r.id is not None]) if reviews else (),
        review_kinds=tuple([r.kind.value for r in reviews]) if reviews else (),
        scores=draft.scores,
        reverify=tuple(visits),
    )
