"""Deciding what one batch does to the patients in the store, before anything is written.

For each record: which patient it is (MRN or sender id exactly; else scored candidates),
whether it is stale (the version the sender read, or an event older than the last
applied), which field changes apply now and which wait for a person (the review policy),
and what a new patient or coverage needs. A batch with any problem changes nothing;
otherwise `commit` puts its changes into the store and the write buffer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from office.records.match import Grade, Match, Score, grade, score
from office.records.policy import COVERAGE, ReviewPolicy
from office.records.store import EVENT_FIELD, LINKED_MRN_SYSTEM, CoverageRow, PatientRow, Store
from office.records.updates import (
    CLEAR,
    PATIENT_FIELDS,
    ConsentUpdate,
    CoverageUpdate,
    MergeRequest,
    PatientUpdate,
    RecordBatch,
    Submitter,
    set_values,
    to_json,
)
from office.records.validate import Problem

__all__ = ["Buffer", "Draft", "Options", "ReviewDraft", "ReviewKind", "plan_batch"]

_NEW_PATIENT_NEEDS = ("first_name", "last_name", "date_of_birth", "sex")
_NO_MATCH = grade(())  # no candidate at all


class ReviewKind(StrEnum):
    """A record change held for a person; each is also a work-item kind."""

    POSSIBLE_DUPLICATE = "possible_duplicate"
    RECORD_REVIEW = "record_review"
    STALE_UPDATE = "stale_update"
    MERGE_REQUEST = "merge_request"


@dataclass(frozen=True, slots=True)
class Options:
    """How a call applies: who, from where, and what a person already decided."""

    actor: str
    now: datetime
    policy: ReviewPolicy
    force_new: bool = False  # "not a duplicate": create, do not match


@dataclass(eq=False)
class ReviewDraft:
    kind: ReviewKind
    row: PatientRow | None
    inbox_id: int | None
    source: str
    actor: str
    submitter: Submitter
    proposed: dict[str, Any]
    current: dict[str, Any]
    fields: list[str]
    candidates: list[dict[str, Any]]
    base_version: int | None
    id: int | None = None


@dataclass(eq=False)
class Draft:
    """What one record did, resolved to ids once the buffer is written."""

    row: PatientRow | None = None
    created: bool = False
    changed: list[str] = field(default_factory=list)
    reviews: list[ReviewDraft] = field(default_factory=list)
    scores: tuple[Score, ...] = ()
    coverage_changed: bool = False


@dataclass
class Buffer:
    """Everything a call will write, in the order the writer needs it."""

    # Per record: the row, its table, its changed fields (name -> (before, after)), actor
    # and source; one audit entry per field.
    audit: list[tuple[PatientRow | CoverageRow, str, dict[str, tuple[Any, Any]], str, str]] = field(
        default_factory=list
    )
    new_patients: list[PatientRow] = field(default_factory=list)
    new_coverages: list[tuple[PatientRow, CoverageRow]] = field(default_factory=list)
    patients: dict[int, PatientRow] = field(default_factory=dict)  # existing, changed
    coverages: list[CoverageRow] = field(default_factory=list)  # existing, changed
    identifiers: list[tuple[PatientRow, str, str]] = field(default_factory=list)
    consents: list[tuple[PatientRow, ConsentUpdate, int | None]] = field(default_factory=list)
    reviews: list[ReviewDraft] = field(default_factory=list)
    reverify: dict[int, PatientRow] = field(default_factory=dict)  # by python id


@dataclass
class _Plan:
    """One record's changes, not yet in the store."""

    draft: Draft
    row: PatientRow | None
    new_row: PatientRow | None = None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    coverages: list[tuple[CoverageRow, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    consents: list[tuple[ConsentUpdate, int | None]] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    reviews: list[ReviewDraft] = field(default_factory=list)
    event_at: datetime | None = None


def plan_batch(
    store: Store, batch: RecordBatch, options: Options, buffer: Buffer
) -> tuple[list[Draft], list[Problem]]:
    """Plan every record of a valid batch; commit them all, or none if any has a problem."""
    plans: list[_Plan] = []
    problems: list[Problem] = []
    for record in batch.records:
        if isinstance(record, MergeRequest):
            outcome: _Plan | list[Problem] = _plan_merge(store, record, batch, options)
        else:
            outcome = _plan_patient(store, record, batch, options)
        if isinstance(outcome, list):
            problems.extend(outcome)
        else:
            plans.append(outcome)
    if problems:
        return [], problems
    for plan in plans:
        _commit(store, plan, batch, options, buffer)
    return [plan.draft for plan in plans], []


# --- one patient ------------------------------------------------------------------------


def _plan_patient(
    store: Store, update: PatientUpdate, batch: RecordBatch, options: Options
) -> _Plan | list[Problem]:
    where = batch.where
    found = _known(store, update, where)
    if isinstance(found, list):
        return found
    row = found
    scores: tuple[Score, ...] = ()
    if row is None and not options.force_new:
        match = _candidates(store, update)
        scores = match.scores
        if match.grade is Grade.CERTAIN and not update.mrn and not update.identifiers:
            row = store.by_id.get(match.patient_id) if match.patient_id is not None else None
        elif match.grade is not Grade.NONE:
            top = store.by_id.get(match.patient_id) if match.patient_id is not None else None
            review = _review(
                ReviewKind.POSSIBLE_DUPLICATE, top, update, batch, options, current={}, fields=[]
            )
            review.candidates = [s.as_json() for s in scores if s.total > 0]
            return _Plan(Draft(scores=scores, reviews=[review]), None, reviews=[review])
    if row is None:
        return _plan_new(store, update, batch, scores)
    return _plan_existing(store, row, update, batch, options, scores)


def _known(store: Store, update: PatientUpdate, where: str) -> PatientRow | list[Problem] | None:
    """The patient the MRN or sender ids name exactly, or None; a problem if they disagree."""
    by_mrn = store.by_mrn.get(update.mrn) if update.mrn else None
    if by_mrn is None and update.mrn:
        by_mrn = store.by_identifier.get((LINKED_MRN_SYSTEM, update.mrn))
    if not update.identifiers:
        found = [by_mrn] if by_mrn is not None else []
        return _survivor(store, found[0], where) if found else None
    by_ids = {
        id(r): r
        for k in update.identifiers
        if (r := store.by_identifier.get((k.system, k.value))) is not None
    }
    found = [by_mrn] if by_mrn is not None else []
    found += [r for r in by_ids.values() if r is not by_mrn]
    if len(found) > 1:
        return [Problem(where, "identity", "the MRN and sender ids name different patients")]
    if not found:
        return None
    return _survivor(store, found[0], where)


def _survivor(store: Store, row: PatientRow, where: str) -> PatientRow | list[Problem]:
    """The record an update naming `row` lands on: `row`, or the one it was merged into."""
    if row.merged_into_id is None:
        return row
    survivor = store.by_id.get(row.merged_into_id)
    if survivor is None:
        return [Problem(where, "identity", "names a patient merged into another record")]
    return survivor


def _candidates(store: Store, update: PatientUpdate) -> Match:
    born = update.date_of_birth
    rows = store.by_birth.get(born) if isinstance(born, date) else None
    if not rows:
        return _NO_MATCH
    wanted = {name: getattr(update, name) for name in PATIENT_FIELDS}
    scores = [
        score(wanted, row.values, row.id)
        for row in rows
        if row.id is not None and row.merged_into_id is None
    ]
    return grade(scores, frozenset(store.distinct))


def _plan_new(
    store: Store, update: PatientUpdate, batch: RecordBatch, scores: tuple[Score, ...]
) -> _Plan | list[Problem]:
    missing = [n for n in _NEW_PATIENT_NEEDS if getattr(update, n) in (None, CLEAR)]
    problems = [Problem(batch.where, n, "required for a new patient") for n in missing]
    values: dict[str, Any] = {
        name: None if (value := getattr(update, name)) is CLEAR else value
        for name in PATIENT_FIELDS
    }
    values["language"] = values["language"] or "en"
    values["mrn"] = update.mrn or f"OF{uuid.uuid4().hex[:12].upper()}"
    row = PatientRow(None, values)
    plan = _Plan(Draft(row=row, created=True, scores=scores), None, new_row=row)
    plan.fields = {k: (None, v) for k, v in values.items() if v is not None}
    for coverage in update.coverages:
        found = _plan_coverage(store, row, coverage, batch.where, plan, new=True)
        if found:
            problems.extend(found)
    plan.consents = [(c, None) for c in update.consents]
    plan.identifiers = [(i.system, i.value) for i in update.identifiers]
    plan.event_at = update.occurred_at
    return problems or plan


def _plan_existing(
    store: Store,
    row: PatientRow,
    update: PatientUpdate,
    batch: RecordBatch,
    options: Options,
    scores: tuple[Score, ...],
) -> _Plan | list[Problem]:
    plan = _Plan(Draft(row=row, scores=scores), row)
    on_file = row.values
    plan.fields = {
        name: (on_file.get(name), after)
        for name, after in set_values(update).items()
        if after != on_file.get(name)
    }
    problems: list[Problem] = []
    for coverage in update.coverages:
        problems.extend(_plan_coverage(store, row, coverage, batch.where, plan, new=False))
    if problems:
        return problems
    for consent in update.consents:
        stored = row.consents.get(consent.channel)
        usable = stored is not None and stored[1] and not stored[2]
        if stored is None or usable != consent.granted:
            plan.consents.append((consent, stored[0] if stored else None))
    linked = row.identifiers
    plan.identifiers = [
        (i.system, i.value) for i in update.identifiers if (i.system, i.value) not in linked
    ]
    stale = (update.expected_version is not None and update.expected_version != row.version) or (
        update.occurred_at is not None
        and row.last_event_at is not None
        and update.occurred_at < row.last_event_at
    )
    stale = stale or any(
        c.expected_version is not None and cov.id is not None and c.expected_version != cov.version
        for c, (cov, _) in zip(update.coverages, plan.coverages, strict=False)
    )
    if stale:
        review = _review(
            ReviewKind.STALE_UPDATE, row, update, batch, options, **_diff(plan), base=update
        )
        return _Plan(Draft(row=row, reviews=[review], scores=scores), row, reviews=[review])
    held = options.policy.held(batch.submitter)
    if held:
        _hold(plan, held, update, batch, options)
    plan.event_at = update.occurred_at
    return plan


def _plan_coverage(
    store: Store,
    row: PatientRow,
    coverage: CoverageUpdate,
    where: str,
    plan: _Plan,
    *,
    new: bool,
) -> list[Problem]:
    payer_id = store.payer_id(coverage.payer_code, coverage.payer_name)
    label = f"coverage {coverage.rank or 1}"
    if payer_id is None:
        return [Problem(where, f"{label}.payer", "no payer with this code or name")]
    found = None
    if not new:
        active = [c for c in row.coverages if c.values.get("active", True)]
        if coverage.rank is not None:
            found = next((c for c in active if c.values["rank"] == coverage.rank), None)
        else:
            found = next(
                (
                    c
                    for c in active
                    if c.values["payer_id"] == payer_id
                    and c.values["member_id"] == coverage.member_id
                ),
                None,
            )
    wanted = set_values(coverage)
    wanted["payer_id"] = payer_id
    if found is None:
        if not isinstance(coverage.member_id, str):
            return [Problem(where, f"{label}.member_id", "required for a new coverage")]
        values: dict[str, Any] = {
            "rank": coverage.rank or 1,
            "relationship_code": "18",
            "active": True,
        }
        values.update(wanted)
        cov = CoverageRow(None, values)
        plan.coverages.append((cov, {k: (None, v) for k, v in values.items() if v is not None}))
        return []
    changes = {k: (found.values.get(k), v) for k, v in wanted.items() if found.values.get(k) != v}
    plan.coverages.append((found, changes))
    return []


def _hold(
    plan: _Plan, held: frozenset[str], update: PatientUpdate, batch: RecordBatch, options: Options
) -> None:
    """Move the changes the policy reserves for a person into one record review."""
    names = sorted(n for n in plan.fields if n in held)
    coverages = COVERAGE in held and any(changes for _cov, changes in plan.coverages)
    if not names and not coverages:
        return
    row = plan.row
    assert row is not None
    kept: dict[str, Any] = {n: getattr(update, n) for n in names}
    proposed = PatientUpdate(
        mrn=row.values["mrn"],
        coverages=update.coverages if coverages else (),
        **kept,
    )
    current = {n: _show(plan.fields[n][0]) for n in names}
    fields = list(names)
    if coverages:
        for cov, changes in plan.coverages:
            for name, (before, _after) in changes.items():
                key = f"coverage {cov.values.get('rank', 1)}.{name}"
                current[key] = _show(before)
                fields.append(key)
        plan.coverages = []
    for name in names:
        del plan.fields[name]
    review = _review(ReviewKind.RECORD_REVIEW, row, proposed, batch, options, current, fields)
    plan.reviews.append(review)
    plan.draft.reviews.append(review)


def _diff(plan: _Plan) -> dict[str, Any]:
    current = {n: _show(before) for n, (before, _after) in plan.fields.items()}
    fields = list(plan.fields)
    for cov, changes in plan.coverages:
        for name, (before, _after) in changes.items():
            key = f"coverage {cov.values.get('rank', 1)}.{name}"
            current[key] = _show(before)
            fields.append(key)
    return {"current": current, "fields": fields}


def _review(
    kind: ReviewKind,
    row: PatientRow | None,
    update: PatientUpdate,
    batch: RecordBatch,
    options: Options,
    current: dict[str, Any],
    fields: list[str],
    base: PatientUpdate | None = None,
) -> ReviewDraft:
    return ReviewDraft(
        kind=kind,
        row=row,
        inbox_id=batch.inbox_id,
        source=_source(batch),
        actor=options.actor,
        submitter=batch.submitter,
        proposed=to_json(update),
        current=current,
        fields=fields,
        candidates=[],
        base_version=(base.expected_version if base is not None else None)
        or (row.version if row is not None else None),
    )


def _show(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _source(batch: RecordBatch) -> str:
    if batch.inbox_id is None:
        return batch.source_kind.value
    return f"inbox:{batch.inbox_id}" + (f" row {batch.row}" if batch.row is not None else "")


# --- a merge --------------------------------------------------------------------------


def _plan_merge(
    store: Store, merge: MergeRequest, batch: RecordBatch, options: Options
) -> _Plan | list[Problem]:
    survivor = _known(store, merge.survivor, batch.where)
    retired_key = (
        PatientUpdate(mrn=merge.retired_mrn, identifiers=(merge.retired_identifier,))
        if merge.retired_identifier is not None
        else PatientUpdate(mrn=merge.retired_mrn)
    )
    retired = _known(store, retired_key, batch.where)
    problems: list[Problem] = []
    for name, found in (("survivor", survivor), ("retired", retired)):
        if isinstance(found, list):
            problems.extend(found)
        elif found is None:
            problems.append(Problem(batch.where, name, "no such patient"))
    if problems:
        return problems
    assert isinstance(survivor, PatientRow)
    assert isinstance(retired, PatientRow)
    if survivor is retired:
        return [Problem(batch.where, "retired", "is the surviving patient")]
    review = _review(ReviewKind.MERGE_REQUEST, survivor, merge.survivor, batch, options, {}, [])
    review.candidates = [{"patient_id": retired.id, "role": "retired"}]
    return _Plan(Draft(row=survivor, reviews=[review]), survivor, reviews=[review])


# --- putting a plan into the store and the buffer ---------------------------------------------


def _commit(
    store: Store, plan: _Plan, batch: RecordBatch, options: Options, buffer: Buffer
) -> None:
    source = _source(batch)
    draft = plan.draft
    buffer.reviews.extend(plan.reviews)
    row = plan.new_row or plan.row
    if row is None:
        return
    if plan.new_row is not None:
        store.add(plan.new_row)
        store.created.append(plan.new_row)
        buffer.new_patients.append(plan.new_row)
    changed = bool(plan.fields or plan.coverages or plan.consents or plan.identifiers)
    actor = options.actor
    if plan.fields:
        if plan.new_row is None:  # a new row's values are already its fields' "after"
            row.values.update((name, after) for name, (_before, after) in plan.fields.items())
        buffer.audit.append((row, "patients", plan.fields, actor, source))
        draft.changed.extend(plan.fields)
        if not row.new and row.id is not None:
            row.changed.update(plan.fields)
            buffer.patients[row.id] = row
    for cov, changes in plan.coverages:
        if not changes:
            continue
        cov.values.update((name, after) for name, (_before, after) in changes.items())
        buffer.audit.append((cov, "coverages", changes, actor, source))
        label = f"coverage {cov.values.get('rank', 1)}."
        draft.changed.extend([label + name for name in changes])
        if cov.new:
            if cov not in row.coverages:
                row.coverages.append(cov)
                buffer.new_coverages.append((row, cov))
        else:
            cov.changed.update(changes)
            if cov not in buffer.coverages:
                buffer.coverages.append(cov)
            cov.version += 1
        draft.coverage_changed = True
        if not row.new:
            buffer.reverify[id(row)] = row
    for consent, consent_id in plan.consents:
        granted = consent.granted or consent_id is not None
        row.consents[consent.channel] = (consent_id, granted, not consent.granted)
        buffer.consents.append((row, consent, consent_id))
        draft.changed.append(f"consent.{consent.channel}")
    for system, value in plan.identifiers:
        row.identifiers.add((system, value))
        store.by_identifier[(system, value)] = row
        buffer.identifiers.append((row, system, value))
    if plan.event_at is not None and changed:
        before = row.last_event_at
        row.last_event_at = plan.event_at
        event = {EVENT_FIELD: (before, plan.event_at)}
        buffer.audit.append((row, "patients", event, actor, source))
    if plan.fields and not row.new:
        row.version += 1
