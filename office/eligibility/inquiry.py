"""Building the inquiries: a batch's pending checks read back as `EligibilityRequest`s.

This is the only place a request is built. Patient data is read here, a chunk at a time
as the batch's workers ask for more, and lives only in the requests in memory; what the
batch stores and returns is ids, codes and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from office.clock import chunks
from office.eligibility.alerts import AlertContext
from office.eligibility.types import EligibilityRequest, Person
from office.models import (
    Appointment,
    CheckStatus,
    Coverage,
    EligibilityCheck,
    Patient,
    Provider,
)

__all__ = ["Inquiries", "Inquiry", "MissingSubscriber", "PayerRef"]


class MissingSubscriber(ValueError):
    """A dependent's coverage lacks the subscriber's name, so no inquiry can be built."""


@dataclass(frozen=True, slots=True)
class PayerRef:
    """The payer a batch asks: its database id, X12 payer code and name."""

    id: int
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Inquiry:
    """One pending check ready to send, with what judging its answer needs.

    `entity` is the record its work items are about: ("appointment", id), or
    ("patient", id) for a refresh check, which has no visit.
    """

    check_id: int
    attempts: int
    entity: tuple[str, int]
    due_at: datetime | None
    context: AlertContext
    request: EligibilityRequest | None  # None: no inquiry can be built (see problem)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class _Provider:
    npi: str
    first_name: str
    last_name: str


class Inquiries:
    """A batch's pending checks, read a chunk at a time as the workers ask for them.

    Sending starts after the first chunk is read instead of after all of them, and the rest
    is read while the event loop would otherwise wait on the network. The first chunk is
    small, as big as the payer's usual limit, so the first inquiries leave before a full
    chunk is read. Checks answered meanwhile (by an earlier try of the same batch) are
    skipped when their chunk is read.
    """

    first_chunk = 50
    chunk = 250

    def __init__(
        self,
        factory: sessionmaker[Session],
        payer: PayerRef,
        check_ids: Sequence[int],
        *,
        today: date,
        deductible_threshold: Decimal,
    ) -> None:
        self._factory = factory
        self._payer = payer
        self._ids = sorted(set(check_ids))
        self._today = today
        self._threshold = deductible_threshold
        self._providers: dict[int, _Provider] = {}

    def __len__(self) -> int:
        """At most this many inquiries: the ids asked for (answered ones are skipped)."""
        return len(self._ids)

    def __iter__(self) -> Iterator[Inquiry]:
        first, rest = self._ids[: self.first_chunk], self._ids[self.first_chunk :]
        for chunk in (first, *chunks(rest, self.chunk)):
            if chunk:
                yield from self._load(chunk)

    def _load(self, ids: Sequence[int]) -> list[Inquiry]:
        check, coverage, patient = EligibilityCheck, Coverage, Patient
        query = (
            select(
                check.id.label("check_id"),
                check.trace,
                check.attempts,
                check.appointment_id,
                check.coverage_id,
                check.patient_id,
                check.date_of_service,
                check.service_type,
                check.request_summary["provider_id"].as_integer().label("provider_id"),
                Appointment.start_at,
                coverage.relationship_code,
                coverage.member_id,
                coverage.group_number,
                coverage.copay_on_file,
                coverage.subscriber_first_name,
                coverage.subscriber_last_name,
                coverage.subscriber_date_of_birth,
                coverage.subscriber_sex,
                patient.first_name,
                patient.last_name,
                patient.date_of_birth,
                patient.sex,
                patient.middle_name,
                patient.suffix,
            )
            .join(coverage, coverage.id == check.coverage_id)
            .join(patient, patient.id == check.patient_id)
            .outerjoin(Appointment, Appointment.id == check.appointment_id)
            .where(
                check.id.in_(ids),
                check.payer_id == self._payer.id,
                check.status == CheckStatus.PENDING,
            )
            .order_by(check.id)
        )
        with self._factory() as session:
            rows = session.execute(query).all()
            self._add_providers(session, {row.provider_id for row in rows})
            copays = _previous_copays(session, {row.coverage_id for row in rows})
        return [self._inquiry(row, copays) for row in rows]

    def _add_providers(self, session: Session, ids: set[int]) -> None:
        missing = sorted(ids - set(self._providers))
        if missing:
            rows = session.execute(
                select(Provider.id, Provider.npi, Provider.first_name, Provider.last_name).where(
                    Provider.id.in_(missing)
                )
            )
            self._providers.update(
                (row.id, _Provider(row.npi, row.first_name, row.last_name)) for row in rows
            )

    def _inquiry(self, row: Row[Any], copays: dict[int, Decimal]) -> Inquiry:
        provider = self._providers[row.provider_id]
        context = AlertContext(
            date_of_service=row.date_of_service,
            service_type=row.service_type,
            today=self._today,
            appointment_id=row.appointment_id,
            patient_id=row.patient_id,
            rendering_npi=provider.npi,
            copay_on_file=row.copay_on_file,
            previous_copay=copays.get(row.coverage_id),
            deductible_threshold=self._threshold,
        )
        if row.appointment_id is not None:
            entity, due_at = ("appointment", row.appointment_id), row.start_at
        else:
            entity, due_at = ("patient", row.patient_id), None
        inquiry = Inquiry(row.check_id, row.attempts, entity, due_at, context, request=None)
        try:
            subscriber, dependent = _insured(row)
        except MissingSubscriber as exc:
            return replace(inquiry, problem=str(exc))
        request = EligibilityRequest(
            trace=row.trace,
            payer_code=self._payer.code,
            payer_name=self._payer.name,
            provider_npi=provider.npi,
            provider_name=provider.last_name,
            provider_first_name=provider.first_name,
            subscriber=subscriber,
            dependent=dependent,
            date_of_service=row.date_of_service,
            service_type=row.service_type,
        )
        return replace(inquiry, request=request)


def _insured(row: Row[Any]) -> tuple[Person, Person | None]:
    """(subscriber, dependent): the patient themself, or the patient under the subscriber."""
    patient = Person(
        first_name=row.first_name,
        last_name=row.last_name,
        date_of_birth=row.date_of_birth,
        sex=row.sex,
        middle_name=row.middle_name,
        suffix=row.suffix,
    )
    if row.relationship_code == "18":
        return replace(patient, member_id=row.member_id, group_number=row.group_number), None
    if not (row.subscriber_first_name and row.subscriber_last_name):
        raise MissingSubscriber(f"coverage {row.coverage_id} has no subscriber name")
    holder = Person(
        first_name=row.subscriber_first_name,
        last_name=row.subscriber_last_name,
        date_of_birth=row.subscriber_date_of_birth,
        sex=row.subscriber_sex,
        member_id=row.member_id,
        group_number=row.group_number,
    )
    return holder, patient


def _previous_copays(session: Session, coverage_ids: Iterable[int]) -> dict[int, Decimal]:
    """The visit copay the latest active answer found, per coverage."""
    found: dict[int, tuple[datetime, Decimal]] = {}
    for chunk in chunks(sorted(coverage_ids)):
        rows = session.execute(
            select(
                EligibilityCheck.coverage_id, EligibilityCheck.checked_at, EligibilityCheck.copay
            ).where(
                EligibilityCheck.coverage_id.in_(chunk),
                EligibilityCheck.status == CheckStatus.ACTIVE,
                EligibilityCheck.copay.is_not(None),
                EligibilityCheck.checked_at.is_not(None),
            )
        )
        for row in rows:
            if row.checked_at is None or row.copay is None:
                continue
            latest = found.get(row.coverage_id)
            if latest is None or row.checked_at > latest[0]:
                found[row.coverage_id] = (row.checked_at, row.copay)
    return {coverage_id: copay for coverage_id, (_at, copay) in found.items()}
