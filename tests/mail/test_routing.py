"""A routing run over a Maildir, end to end on SQLite and PostgreSQL: stored once, routed
once with the rule recorded, acknowledged by RFC 3834's rules, filed on the server."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

from sqlalchemy import select

from app.demo_mail import CATEGORIES, SentMail, synthetic_mail
from office.db import transaction
from office.mail import routed_mail
from office.mail.bounces import BounceLinks
from office.mail.dsn import DeliveryReport, RecipientStatus
from office.models import (
    AuditEntry,
    Channel,
    MailStatus,
    OutboxItem,
    OutboxStatus,
    Patient,
    WorkStatus,
)
from tests.mail.conftest import ADDRESS, NOW, PEOPLE, Office


def corpus(n: int = 24, *, people: bool = True, **kwargs: object) -> list[tuple[str, bytes]]:
    """Synthetic mail naming the practice's patients, or made-up people (a sender each)."""
    chosen = PEOPLE if people else ()
    return synthetic_mail(n, people=chosen, mailbox_address=ADDRESS, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_every_category_is_stored_routed_and_filed(practice: Office) -> None:
    practice.deliver(corpus(24))

    steps = practice.run()

    rows = practice.mail()
    assert len(rows) == 24
    assert {row.status for row in rows} == {MailStatus.ROUTED}
    assert all(row.rule and row.queue and row.decision["matched"] is not None for row in rows)
    by_category = {row.category for row in rows}
    assert {
        "referral",
        "lab_result",
        "records_request",
        "billing",
        "appointment_request",
        "refill",
        "spam",
        "fax",
        "bounce",
        "triage",
    } <= by_category
    assert practice.left_in_inbox() == []
    assert len(practice.routed_on_server()) == 24
    assert steps.finished == 24
    assert steps.routed.messages == 24


def test_decisions_name_their_rule_and_queue(practice: Office) -> None:
    practice.deliver(corpus(12))
    practice.run()
    decided = {row.category: (row.rule, row.queue) for row in practice.mail()}
    assert decided["lab_result"] == ("lab-results", "medical_assistant")
    assert decided["records_request"] == ("records-requests", "compliance")
    assert decided["spam"] == ("marketing-and-spam", "spam")
    forward = next(r for r in practice.mail() if r.subject == "Fwd: Laboratory report")
    assert forward.sender == "noreply@labcorp.example"  # the real sender, inside
    with practice.factory() as session:
        board = routed_mail(session)
    assert "spam" not in board
    assert {item.rule for item in board["medical_assistant"]} == {
        "lab-results",
        "prescription-refills",
    }


def test_patients_are_linked_by_mrn_or_name_and_birth_date(practice: Office) -> None:
    practice.deliver(corpus(12))
    practice.run()
    with practice.factory() as session:
        ids = {p.mrn: p.id for p in session.scalars(select(Patient))}
    rows = {row.subject: row for row in practice.mail()}
    lab = rows["Your lab report is ready"]
    assert lab.patient_id == ids[PEOPLE[1 % len(PEOPLE)].mrn]
    assert lab.decision["patient_link"] == "by MRN"
    records = rows["Medical records request"]
    assert records.patient_id == ids[PEOPLE[2 % len(PEOPLE)].mrn]
    assert records.decision["patient_link"] == "by name and date of birth"


def test_acknowledgements_follow_rfc_3834_and_carry_no_patient_data(practice: Office) -> None:
    practice.deliver(corpus(12, people=False))
    steps = practice.run()

    acks = [item for item in practice.outbox() if item.kind == "mail_ack"]
    acknowledged = {row.id for row in practice.mail() if "acknowledge" in row.decision["actions"]}
    assert {item.detail["mail_id"] for item in acks} == acknowledged
    assert all(item.status is OutboxStatus.SENT for item in acks)
    assert steps.sent["mail_ack:sent"] == len(acks)
    categories = {row.id: row.category for row in practice.mail()}
    assert {categories[i] for i in acknowledged} == {
        "referral",
        "records_request",
        "billing",
        "appointment_request",
        "refill",
        "triage",
    }
    # spam, labs, fax, bounces and the out-of-office reply get none
    auto = next(r for r in practice.mail() if r.subject == "Out of office")
    assert auto.decision["ack_refused"] == "Auto-Submitted"

    sent = practice.settings.outbox_dir
    for item in acks:
        [path] = sent.glob(f"{item.message_id.strip('<>').split('@')[0]}*.eml")
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"]
        assert message["References"]
        text = message.get_body().get_content()
        original = next(r for r in practice.mail() if r.id == item.detail["mail_id"])
        assert original.subject not in message["Subject"]
        for word in ("Garcia", "Smith", "Khan", "Chen", "Lopez", "Brown", "MRN", "DOB"):
            assert word not in text
            assert word not in message["Subject"]


def test_one_acknowledgement_per_sender_per_day(practice: Office) -> None:
    practice.deliver(corpus(12))
    practice.run()
    practice.deliver(corpus(12, seed=8))  # the same senders write again an hour later
    practice.run(NOW + timedelta(hours=1))
    acks = [item for item in practice.outbox() if item.kind == "mail_ack"]
    assert len({item.recipient for item in acks}) == len(acks)
    later = [r for r in practice.mail()[12:] if r.decision.get("ack_refused")]
    assert any(r.decision["ack_refused"] == "acknowledged within the period" for r in later)
    practice.deliver(corpus(12, seed=9))
    practice.run(NOW + timedelta(hours=25))
    assert len([i for i in practice.outbox() if i.kind == "mail_ack"]) > len(acks)


def test_a_backlog_import_acknowledges_nothing(practice: Office) -> None:
    practice.deliver(corpus(24))
    practice.run(backlog=True)
    assert [item for item in practice.outbox() if item.kind == "mail_ack"] == []
    assert all(row.status is MailStatus.ROUTED for row in practice.mail())


def test_rerun_stores_nothing_twice_and_same_id_in_two_mailboxes_routes_twice(
    practice: Office,
) -> None:
    messages = corpus(12)
    practice.deliver(messages)
    practice.run()
    practice.deliver(messages)  # delivered again (a client copied them back)
    steps = practice.run()
    assert len(practice.mail()) == 12
    assert steps.stored == {"fetched": 12, "stored": 0, "known": 12, "duplicates_finished": 12}
    assert practice.left_in_inbox() == []

    from office.contracts.mailbox import Fetched, FetchedBatch
    from office.mail.store import store_batch

    with transaction(practice.factory) as session:
        new, known, _ = store_batch(
            session,
            "billing",
            FetchedBatch(0, [Fetched("k", None, messages[0][1])], False),
            now=NOW,
            may_acknowledge=True,
        )
    assert len(new) == 1
    assert known == 0


def test_a_bounce_marks_the_patients_address_and_opens_a_work_item(practice: Office) -> None:
    with transaction(practice.factory) as session:
        patient = session.scalars(select(Patient).where(Patient.mrn == PEOPLE[0].mrn)).one()
        session.add(
            OutboxItem(
                idempotency_key="reminder:1",
                channel=Channel.EMAIL,
                kind="reminder",
                patient_id=patient.id,
                recipient=patient.email or "",
                status=OutboxStatus.SENT,
                message_id="<r1@riverbend.test>",
            )
        )
        patient_id = patient.id
    practice.deliver(corpus(10, sent=[SentMail("<r1@riverbend.test>", PEOPLE[0].email)]))
    practice.run()

    bounce = next(row for row in practice.mail() if row.category == "bounce")
    assert bounce.bounced_outbox_id is not None
    assert bounce.patient_id == patient_id
    with practice.factory() as session:
        assert session.get_one(Patient, patient_id).email_undeliverable is True
        audit = session.scalars(select(AuditEntry).where(AuditEntry.field == "email_undeliverable"))
        assert [entry.source for entry in audit] == [f"mail:{bounce.id}"]
    items = [w for w in practice.work() if w.kind == "email_bounced"]
    assert [(w.entity, w.entity_id, w.status) for w in items] == [
        ("patient", patient_id, WorkStatus.OPEN)
    ]


def test_a_bounce_without_our_message_id_links_the_newest_message_to_its_address(
    practice: Office,
) -> None:
    """Two bounces in one batch, naming no Message-ID of ours: each links by its address."""
    ids: dict[str, int] = {}
    with transaction(practice.factory) as session:
        for key, person, days_ago in (("older", 0, 2), ("newer", 0, 1), ("other", 1, 3)):
            row = OutboxItem(
                idempotency_key=f"reminder:{key}",
                channel=Channel.EMAIL,
                kind="reminder",
                recipient=PEOPLE[person].email,
                status=OutboxStatus.SENT,
                message_id=f"<{key}@riverbend.test>",
                sent_at=NOW - timedelta(days=days_ago),
            )
            session.add(row)
            session.flush()
            ids[key] = row.id
    sent = [SentMail(f"<elsewhere-{i}@other.example>", p.email) for i, p in enumerate(PEOPLE)]
    practice.deliver(corpus(2 * len(CATEGORIES), sent=sent))
    practice.run()

    bounces = sorted(
        (row for row in practice.mail() if row.category == "bounce"), key=lambda row: row.id
    )
    assert [row.bounced_outbox_id for row in bounces] == [ids["newer"], ids["other"]]


def test_a_bounce_for_several_addresses_links_the_newest_message_to_any_of_them(
    practice: Office,
) -> None:
    ids: list[int] = []
    with transaction(practice.factory) as session:
        for index, (person, hours_ago) in enumerate(((0, 2), (1, 26), (1, 1))):
            row = OutboxItem(
                idempotency_key=f"reminder:{index}",
                channel=Channel.EMAIL,
                kind="reminder",
                recipient=PEOPLE[person].email,
                status=OutboxStatus.SENT,
                sent_at=NOW - timedelta(hours=hours_ago),
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
        both = DeliveryReport(
            original_message_id=None,
            recipients=tuple(
                RecipientStatus(person.email, None, "failed", "5.1.1") for person in PEOPLE
            ),
        )
        first = DeliveryReport(None, both.recipients[:1])
        links = BounceLinks(session, [both, first])
        assert [links.item(both).id, links.item(first).id] == [ids[2], ids[0]]  # type: ignore[union-attr]


def test_triage_and_quarantine_open_work_items_with_no_content(practice: Office) -> None:
    practice.deliver([*corpus(12), ("9999.bad", b"\x00\x01 garbage without headers")])
    practice.run()
    rows = practice.mail()
    bad = next(r for r in rows if r.status is MailStatus.QUARANTINED)
    assert bad.reason == "no header fields: not an email message"
    kinds = {(w.kind, w.entity_id) for w in practice.work()}
    assert ("mail_quarantined", bad.id) in kinds
    triaged = [r.id for r in rows if r.rule == "default:front-desk-triage"]
    assert triaged
    assert all(("mail_triage", i) in kinds for i in triaged)
    for item in practice.work():
        for person in PEOPLE:
            assert person.last not in item.summary


def test_every_category_appears_in_the_demo_corpus() -> None:
    assert len({key for key, _ in synthetic_mail(len(CATEGORIES))}) == len(CATEGORIES)
