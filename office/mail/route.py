"""Routing stored mail: parse, classify, act, and record the decision with the rule behind it.

Each batch is one transaction: the decisions, the work items for triage, the
acknowledgements and forwards written to the outbox (sent later, exactly once,
by `office.mailing.send`), patient links and bounces all land together, or none
do and the batch is routed again. A message that cannot be read is quarantined
with the reason, never dropped.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from office.clock import chunks
from office.db import transaction
from office.ledgers import enqueue_outbox
from office.ledgers.work import WorkNeeded, open_work_items
from office.mail.acknowledge import ack_recipient, ack_refusal
from office.mail.bounces import BounceLinks, apply_bounce
from office.mail.classify import TRIAGE_QUEUE, TRIAGE_RULE, Decision, classify
from office.mail.parse import Parsed, Unreadable, parse_mail
from office.mail.patients import find_patients
from office.models import (
    Channel,
    MailAckSender,
    MailMessage,
    MailStatus,
    OutboxStatus,
    Staff,
    StaffStatus,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from office.mail.rules import RuleSet

__all__ = [
    "ACK_KIND",
    "FORWARD_KIND",
    "MailTally",
    "RouteConfig",
    "route_pending",
    "route_rows",
]

ACK_KIND = "mail_ack"
FORWARD_KIND = "mail_forward"
BATCH = 200
_ACK_SENDERS: Table = MailAckSender.__table__  # type: ignore[assignment]
_FIRST_ACTIONS = frozenset({"route", "triage", "spam", "quarantine"})


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """What routing needs besides the messages: the rules and the practice's own addresses."""

    rules: RuleSet
    own_addresses: frozenset[str]
    ack_period: timedelta = timedelta(hours=24)


@dataclass
class MailTally:
    """Counts per (category, action): what the run artifact shows. Ids and counts only."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, category: str, action: str, n: int = 1) -> None:
        self.counts[(category, action)] += n

    def merge(self, other: MailTally) -> MailTally:
        self.counts.update(other.counts)
        return self

    @property
    def messages(self) -> int:
        """Messages decided: each is counted once under route, triage, spam or quarantine."""
        return sum(n for (_, act), n in self.counts.items() if act in _FIRST_ACTIONS)

    def total(self, action: str) -> int:
        return sum(n for (_, act), n in self.counts.items() if act == action)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"category": category, "action": action, "count": n}
            for (category, action), n in sorted(self.counts.items())
        ]

    def to_dict(self) -> dict[str, int]:
        return {f"{category}:{action}": n for (category, action), n in sorted(self.counts.items())}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> MailTally:
        tally = cls()
        for key, n in data.items():
            category, _, action = key.partition(":")
            tally.add(category, action, n)
        return tally


def route_pending(
    factory: sessionmaker[Session],
    config: RouteConfig,
    *,
    now: datetime,
    mailbox: str | None = None,
    batch_size: int = BATCH,
) -> MailTally:
    """Route every stored, undecided message (of one mailbox, or all), a batch per transaction."""
    tally = MailTally()
    after = 0
    while True:
        with factory() as session:
            query = select(MailMessage.id).where(
                MailMessage.status == MailStatus.STORED, MailMessage.id > after
            )
            if mailbox is not None:
                query = query.where(MailMessage.mailbox == mailbox)
            ids = list(session.scalars(query.order_by(MailMessage.id).limit(batch_size)))
        if not ids:
            return tally
        after = ids[-1]
        try:
            with transaction(factory) as session:
                tally.merge(route_rows(session, ids, config, now=now))
        except IntegrityError:
            # Another run routed some of these meanwhile; whatever is left is routed again.
            with transaction(factory) as session:
                tally.merge(route_rows(session, ids, config, now=now))


def route_rows(
    session: Session, ids: Sequence[int], config: RouteConfig, *, now: datetime
) -> MailTally:
    """Decide and act on these stored messages within the caller's transaction."""
    tally = MailTally()
    rows = session.execute(
        select(
            MailMessage.id,
            MailMessage.mailbox,
            MailMessage.raw,
            MailMessage.may_acknowledge,
            MailMessage.stored_at,
        )
        .where(MailMessage.id.in_(list(ids)), MailMessage.status == MailStatus.STORED)
        # PostgreSQL: a concurrent run skips rows this one holds (SQLite writers queue).
        .with_for_update(skip_locked=True)
    ).all()
    updates: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    work: list[WorkNeeded] = []
    staff = _StaffLookup(session)
    acts: list[_Act] = []
    read = [(row, parse_mail(row.raw)) for row in rows]
    links = BounceLinks(
        session,
        [parsed.report for _, parsed in read if isinstance(parsed, Parsed) and parsed.report],
    )
    for row, parsed in read:
        if isinstance(parsed, Unreadable):
            updates.append(_quarantine(work, row.id, row.mailbox, parsed.reason, now))
            tally.add("quarantined", "quarantine")
            continue
        act = _Act(session, work, row.id, row.mailbox, parsed, classify(parsed, config.rules), now)
        act.resolve_queue(staff)
        if parsed.report is not None:
            act.bounce(links)
        if act.decision.triage:
            act.triage()
        for address in act.decision.forward_to:
            outbox.append(_outbox_row(FORWARD_KIND, row.id, row.mailbox, address, now, {}))
            act.notes.append("forward")
        if act.decision.acknowledge and not act.decision.no_acknowledge:
            act.ack_refused = ack_refusal(
                parsed,
                own_addresses=config.own_addresses,
                may_acknowledge=row.may_acknowledge,
                stored_at=row.stored_at,
            )
            act.ack_to = ack_recipient(parsed)
        acts.append(act)
    _link_patients(session, [act for act in acts if act.decision.link_patient])
    wanting = [act for act in acts if act.ack_to is not None and act.ack_refused is None]
    granted = _claim_ack_slots(
        session,
        {act.ack_to: act.mail_id for act in reversed(wanting) if act.ack_to},
        now,
        config.ack_period,
    )
    for act in acts:
        if act.ack_to is not None and act.ack_refused is None:
            if granted.get(act.ack_to) == act.mail_id:
                template = {"template": act.decision.acknowledge}
                outbox.append(
                    _outbox_row(ACK_KIND, act.mail_id, act.mailbox, act.ack_to, now, template)
                )
                act.notes.append("acknowledge")
            else:
                act.ack_refused = "acknowledged within the period"
        if act.ack_refused is not None:
            act.values["ack_refused"] = act.ack_refused
        updates.append(act.record())
        for action in act.counted_actions():
            tally.add(act.decision.category, action)
    if updates:
        session.execute(update(MailMessage), updates)
    if outbox:
        enqueue_outbox(session, outbox)  # type: ignore[arg-type]
    if work:
        open_work_items(session, work, now=now)
    return tally


class _Act:
    """One message's decision being carried out; `record` is its row's update."""

    def __init__(
        self,
        session: Session,
        work: list[WorkNeeded],
        mail_id: int,
        mailbox: str,
        parsed: Parsed,
        decision: Decision,
        now: datetime,
    ) -> None:
        self.session = session
        self.work = work
        self.mail_id = mail_id
        self.mailbox = mailbox
        self.parsed = parsed
        self.decision = decision
        self.now = now
        self.notes: list[str] = []
        self.values: dict[str, Any] = {}
        self.patient_id: int | None = None
        self.bounced_outbox_id: int | None = None
        self.queue = decision.queue
        self.ack_to: str | None = None  # who an acknowledgement would go to
        self.ack_refused: str | None = None

    def resolve_queue(self, staff: _StaffLookup) -> None:
        """A person's queue names a staff id; an unknown or inactive person means triage."""
        if not self.queue.startswith("staff:"):
            return
        staff_id = staff.active_id(self.queue.removeprefix("staff:"))
        if staff_id is None:
            self.values["person_unknown"] = True
            self.decision = _to_triage(self.decision)
            self.queue = TRIAGE_QUEUE
        else:
            self.queue = f"staff:{staff_id}"

    def bounce(self, links: BounceLinks) -> None:
        report = self.parsed.report
        assert report is not None
        outcome = apply_bounce(self.session, self.mail_id, report, links)
        self.bounced_outbox_id = outcome.outbox_id
        self.values["bounce"] = outcome.outcome
        if outcome.undeliverable:
            self.patient_id = outcome.patient_id
            self.notes.append("address_undeliverable")
        elif outcome.outbox_id is None:
            self.decision = _to_triage(self.decision, category="bounce")

    def linked(self, patient_id: int | None, how: str) -> None:
        self.values["patient_link"] = how
        if patient_id is not None and self.patient_id is None:
            self.patient_id = patient_id
            self.notes.append("link_patient")

    def triage(self) -> None:
        self.work.append(
            WorkNeeded(
                kind="mail_triage",
                entity="mail_message",
                entity_id=self.mail_id,
                summary=(
                    f"Mail {self.mail_id} to {self.mailbox} matched no routing rule: "
                    "read it and send it to the right queue"
                ),
                role=TRIAGE_QUEUE,
                detail={"mail_id": self.mail_id, "mailbox": self.mailbox},
            )
        )
        self.notes.append("triage")

    def counted_actions(self) -> list[str]:
        first = "spam" if self.decision.spam else ("triage" if self.decision.triage else "route")
        return [first, *(note for note in self.notes if note != "triage")]

    def record(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "id": self.mail_id,
            "status": MailStatus.ROUTED,
            "reason": None,
            "sender": (self.parsed.original_sender or self.parsed.sender)[:254] or None,
            "subject": self.parsed.subject[:300],
            "sent_at": self.parsed.date,
            "category": decision.category,
            "queue": self.queue,
            "rule": decision.rule[:80],
            "decision": {
                "matched": list(decision.matched),
                "actions": [self.counted_actions()[0], *self.notes],
                **self.values,
            },
            "patient_id": self.patient_id,
            "bounced_outbox_id": self.bounced_outbox_id,
            "routed_at": self.now,
        }


class _StaffLookup:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[str, int | None] = {}

    def active_id(self, email: str) -> int | None:
        if email not in self.cache:
            self.cache[email] = self.session.scalar(
                select(Staff.id).where(
                    Staff.email == email,
                    Staff.status.in_((StaffStatus.ACTIVE, StaffStatus.PENDING)),
                )
            )
        return self.cache[email]


def _to_triage(decision: Decision, category: str = "triage") -> Decision:
    return replace(decision, rule=TRIAGE_RULE, category=category, queue=TRIAGE_QUEUE)


def _quarantine(
    work: list[WorkNeeded], mail_id: int, mailbox: str, reason: str, now: datetime
) -> dict[str, Any]:
    work.append(
        WorkNeeded(
            kind="mail_quarantined",
            entity="mail_message",
            entity_id=mail_id,
            summary=(
                f"Mail {mail_id} to {mailbox} could not be read ({reason}); it is kept as received"
            ),
            role=TRIAGE_QUEUE,
            detail={"mail_id": mail_id, "mailbox": mailbox},
        )
    )
    return {
        "id": mail_id,
        "status": MailStatus.QUARANTINED,
        "reason": reason,
        "sender": None,
        "subject": None,
        "sent_at": None,
        "category": "quarantined",
        "queue": TRIAGE_QUEUE,
        "rule": "builtin:quarantine",
        "decision": {"matched": [], "actions": ["quarantine"]},
        "patient_id": None,
        "bounced_outbox_id": None,
        "routed_at": now,
    }


def _link_patients(session: Session, acts: list[_Act]) -> None:
    """Link each message to the patient it names, with two queries for the batch."""
    texts = [f"{act.parsed.subject}\n{act.parsed.all_text}" for act in acts]
    for act, (patient_id, how) in zip(acts, find_patients(session, texts), strict=True):
        act.linked(patient_id, how)


def _claim_ack_slots(
    session: Session, wanted: dict[str, int], now: datetime, period: timedelta
) -> dict[str, int]:
    """Take each sender's one acknowledgement for the period; returns address -> mail id granted.

    `wanted` maps each sender to the first message of the batch that would answer them.
    Rows are claimed with RETURNING, so a sender another run claimed a moment ago is
    never granted twice, on SQLite and PostgreSQL alike.
    """
    if not wanted:
        return {}
    table = _ACK_SENDERS
    granted: dict[str, int] = {}
    addresses = sorted(wanted)
    for chunk in chunks(addresses):
        renewed = session.execute(
            table.update()
            .where(table.c.address.in_(chunk), table.c.last_ack_at <= now - period)
            .values(
                last_ack_at=now,
                mail_id=case({a: wanted[a] for a in chunk}, value=table.c.address),
            )
            .returning(table.c.address)
        )
        granted.update((address, wanted[address]) for address in renewed.scalars())
        dialect = session.get_bind().dialect.name
        insert_new = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        created = session.execute(
            insert_new.on_conflict_do_nothing(index_elements=["address"]).returning(
                table.c.address
            ),
            [{"address": a, "last_ack_at": now, "mail_id": wanted[a]} for a in chunk],
        )
        granted.update((address, wanted[address]) for address in created.scalars())
    return granted


def _outbox_row(
    kind: str, mail_id: int, mailbox: str, recipient: str, now: datetime, extra: dict[str, Any]
) -> dict[str, Any]:
    suffix = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:12]
    key = f"{kind}:{mail_id}" if kind == ACK_KIND else f"{kind}:{mail_id}:{suffix}"
    return {
        "idempotency_key": key,
        "channel": Channel.EMAIL,
        "kind": kind,
        "appointment_id": None,
        "patient_id": None,
        "recipient": recipient,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "error": None,
        "detail": {"mail_id": mail_id, "mailbox": mailbox, **extra},
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }
