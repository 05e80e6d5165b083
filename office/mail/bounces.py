"""Acting on a bounce: find the outbox message it reports on, and what it means for the patient.

The original Message-ID links a DSN to the outbox row that sent it; when the
report carries none, the failed address does (the newest message sent to it).
`BounceLinks` finds those rows for a batch's reports with two queries. A
permanent failure to the patient's own address marks that address undeliverable,
recorded in the audit ledger, and opens a work item for the front desk to get a
new one. A delay, or a bounce of nothing we sent, goes to front-desk triage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from office.clock import chunks
from office.ledgers import apply_changes, open_work_item
from office.models import OutboxItem, OutboxStatus, Patient

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from office.mail.dsn import DeliveryReport

__all__ = ["ACTOR", "BounceLinks", "BounceOutcome", "apply_bounce"]

ACTOR = "flow:mail"


@dataclass(frozen=True, slots=True)
class BounceOutcome:
    """What a bounce led to: the outbox row it names, and whether a patient's address failed."""

    outbox_id: int | None
    patient_id: int | None
    undeliverable: bool
    outcome: str  # "address undeliverable", "failed, not a patient address", "delayed", ...


def apply_bounce(
    session: Session, mail_id: int, report: DeliveryReport, links: BounceLinks
) -> BounceOutcome:
    """Link the report to its outbox row and act on a permanent failure (see module doc).

    Args:
        links: The outbox rows of the batch's reports, read before any is applied.
    """
    failures = report.failures
    item = links.item(report)
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


class BounceLinks:
    """The outbox row each of a batch's reports is about, read with two queries for the batch.

    A report names its row by the original Message-ID; failing that, by the newest
    message sent (or perhaps sent) to an address it watches: its failures, or all its
    recipients when none failed.
    """

    def __init__(self, session: Session, reports: Sequence[DeliveryReport]) -> None:
        self._by_message_id: dict[str, OutboxItem] = {}
        self._newest: dict[str, OutboxItem] = {}
        # ORDER BY sent_at DESC puts NULL (a send of unknown outcome) first on PostgreSQL
        # and last on SQLite; choosing among addresses here orders as the database does.
        self._null_rank = 1 if session.get_bind().dialect.name == "postgresql" else -1
        wanted = sorted({r.original_message_id.strip() for r in reports if r.original_message_id})
        for chunk in chunks(wanted):
            rows = session.scalars(
                select(OutboxItem).where(OutboxItem.message_id.in_(chunk)).order_by(OutboxItem.id)
            )
            for row in rows:
                self._by_message_id.setdefault(str(row.message_id), row)
        unnamed = [report for report in reports if self._named(report) is None]
        addresses = sorted({address for report in unnamed for address in _watched(report)})
        newest_first = (OutboxItem.sent_at.desc(), OutboxItem.id.desc())
        for chunk in chunks(addresses):
            ranked = (
                select(
                    OutboxItem.id,
                    func.row_number()
                    .over(partition_by=OutboxItem.recipient, order_by=newest_first)
                    .label("rank"),
                )
                .where(
                    OutboxItem.recipient.in_(chunk),
                    OutboxItem.status.in_((OutboxStatus.SENT, OutboxStatus.UNKNOWN)),
                )
                .subquery()
            )
            rows = session.scalars(
                select(OutboxItem)
                .join(ranked, ranked.c.id == OutboxItem.id)
                .where(ranked.c.rank == 1)
            )
            self._newest.update((row.recipient, row) for row in rows)

    def item(self, report: DeliveryReport) -> OutboxItem | None:
        """The outbox row this report is about, or None when it names nothing we sent."""
        named = self._named(report)
        if named is not None:
            return named
        found = [self._newest[a] for a in _watched(report) if a in self._newest]
        return max(found, key=self._recency) if found else None

    def _named(self, report: DeliveryReport) -> OutboxItem | None:
        message_id = (report.original_message_id or "").strip()
        return self._by_message_id.get(message_id) if message_id else None

    def _recency(self, item: OutboxItem) -> tuple[int, Any, int]:
        if item.sent_at is None:
            return (self._null_rank, 0, item.id)
        return (0, item.sent_at, item.id)


def _watched(report: DeliveryReport) -> list[str]:
    return [recipient.address for recipient in report.failures or report.recipients]
