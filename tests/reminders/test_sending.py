"""What was sent and what was not, read back from the file outbox, for each rule that matters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from integrations.sms import FileSms
from office.contracts.mail import MailPermanentError, Wire
from office.db import transaction
from office.ledgers import apply_changes
from office.messages import message_id_for
from office.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    CheckStatus,
    Consent,
    Coverage,
    EligibilityCheck,
    OutboxStatus,
    Payer,
    WorkItemVisit,
)
from office.reminders import (
    Batch,
    Channels,
    Tally,
    Transports,
    due_outbox_ids,
    enqueue_due,
    enqueue_notices,
    mask_address,
    preview,
    send_batch,
)
from tests.reminders.conftest import (
    NOW,
    Clinic,
    recipients,
    sent_mail,
    sent_texts,
    text_of,
)

CHICAGO = ZoneInfo("America/Chicago")


def run(clinic: Clinic, now: datetime) -> Tally:
    return clinic.run(now)


def statuses(clinic: Clinic) -> dict[str, tuple[OutboxStatus, str | None]]:
    return {row.idempotency_key: (row.status, row.error) for row in clinic.outbox()}


def calendar_of(message: object) -> Calendar:
    from email.message import EmailMessage

    assert isinstance(message, EmailMessage)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_content())  # type: ignore[attr-defined]
    raise AssertionError("no calendar part")


def test_due_reminder_goes_out_once_per_channel_with_a_calendar(clinic: Clinic) -> None:
    patient = clinic.patient()
    visit = clinic.appointment(patient, start=NOW + timedelta(hours=24))

    first = run(clinic, NOW)
    again = run(clinic, NOW + timedelta(minutes=15))

    assert first.flat()["sent_email"] == 1
    assert first.flat()["sent_sms"] == 1
    assert again.total("sent") == 0
    assert recipients(clinic.settings) == {"email": ["ava@example.test"], "sms": ["+13125550123"]}
    key = f"appt:{visit}:v1:reminder:24h:email"
    assert statuses(clinic)[key] == (OutboxStatus.SENT, None)
    # Both runs saw the 72 h step due too late: recorded once as superseded, never sent.
    assert statuses(clinic)[f"appt:{visit}:v1:reminder:72h:email"] == (
        OutboxStatus.SKIPPED,
        "superseded by a later reminder",
    )
    (message,) = sent_mail(clinic.settings)
    assert message["Message-ID"] == message_id_for(key, "lakeside.test")
    calendar = calendar_of(message)
    event = calendar.walk("VEVENT")[0]
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"appt-{visit}@lakeside.test"
    assert int(event["SEQUENCE"]) == 1
    body = text_of(message)
    # The text stands on its own if a gateway strips the calendar.
    assert "Wednesday, December 2, 2026, 10:00 AM (CST)" in body
    assert "100 Oak Street" in body
    assert "/a/" in body
    (text,) = sent_texts(clinic.settings)
    assert len(text["body"]) <= 160
    assert "CANCEL" not in text["body"].upper()


def test_opt_out_stops_that_channel_at_once_even_for_a_queued_text(clinic: Clinic) -> None:
    opted = clinic.patient(opted_out=("sms",), phone="+13125550111")
    queued = clinic.patient(email="bo@example.test", phone="+13125550122")
    clinic.appointment(opted, start=NOW + timedelta(hours=24))
    late_opt_out = clinic.appointment(queued, start=NOW + timedelta(hours=24))
    enqueue_due(clinic.factory, now=NOW)  # both texts recorded; one is pending
    with transaction(clinic.factory) as session:
        consent = session.scalars(
            select(Consent).where(Consent.patient_id == queued, Consent.channel == "sms")
        ).one()
        consent.opted_out_at = NOW

    run(clinic, NOW)

    assert recipients(clinic.settings) == {
        "email": ["ava@example.test", "bo@example.test"],
        "sms": [],
    }
    assert statuses(clinic)[f"appt:{late_opt_out}:v1:reminder:24h:sms"] == (
        OutboxStatus.SKIPPED,
        "opted out",
    )


def test_no_consent_sends_nothing_and_opens_a_work_item(clinic: Clinic) -> None:
    patient = clinic.patient(consents=())
    visit = clinic.appointment(patient, start=NOW + timedelta(hours=24))

    run(clinic, NOW)

    assert recipients(clinic.settings) == {"email": [], "sms": []}
    assert {error for _, error in statuses(clinic).values()} >= {"no consent"}
    items = [item for item in clinic.work_items() if item.kind == "reminder_no_channel"]
    # A patient-level problem (office/workqueue/kinds.py): one item for the patient,
    # listing the visit it affects.
    assert [(item.entity, item.entity_id) for item in items] == [("patient", patient)]
    with clinic.factory() as session:
        listed = session.scalars(
            select(WorkItemVisit.appointment_id).where(WorkItemVisit.work_item_id == items[0].id)
        ).all()
    assert listed == [visit]
    assert "ava" not in items[0].summary.lower()


def test_confidential_communications_go_only_to_the_approved_address(clinic: Clinic) -> None:
    patient = clinic.patient(confidential=("email", "private@example.test"))
    visit = clinic.appointment(patient, start=NOW + timedelta(hours=24))

    run(clinic, NOW)

    assert recipients(clinic.settings) == {"email": ["private@example.test"], "sms": []}
    assert statuses(clinic)[f"appt:{visit}:v1:reminder:24h:sms"] == (
        OutboxStatus.SKIPPED,
        "confidential: not the approved channel",
    )


def test_cancelled_appointment_gets_no_reminder_and_pending_ones_are_withdrawn(
    clinic: Clinic,
) -> None:
    patient = clinic.patient()
    kept = clinic.appointment(patient, start=NOW + timedelta(hours=24))
    already = clinic.appointment(
        clinic.patient(email="cy@example.test", phone="+13125550133"),
        start=NOW + timedelta(hours=24),
        status=AppointmentStatus.CANCELLED,
    )
    enqueue_due(clinic.factory, now=NOW)
    with transaction(clinic.factory) as session:
        appointment = session.get_one(Appointment, kept)
        apply_changes(
            session,
            appointment,
            {"status": AppointmentStatus.CANCELLED, "cancelled_at": NOW},
            actor="test",
            source="test",
        )
        session.flush()
        notices = enqueue_notices(session, kept, now=NOW)

    run(clinic, NOW)

    assert notices.total("withdrawn") == 2
    assert {
        key: status for key, (status, _) in statuses(clinic).items() if "reminder:24h" in key
    } == {
        f"appt:{kept}:v1:reminder:24h:email": OutboxStatus.WITHDRAWN,
        f"appt:{kept}:v1:reminder:24h:sms": OutboxStatus.WITHDRAWN,
    }
    assert not any(str(already) == key.split(":")[1] for key in statuses(clinic))
    (message,) = sent_mail(clinic.settings)
    assert "cancel" in str(message["Subject"]).lower()
    calendar = calendar_of(message)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert int(calendar.walk("VEVENT")[0]["SEQUENCE"]) == 2
    assert sent_texts(clinic.settings) == []


def test_quiet_hours_text_goes_the_evening_before_never_at_night(clinic: Clinic) -> None:
    clinic.add_type("early", reminder_offsets=[{"hours": 2, "channels": ["sms"]}])
    patient = clinic.patient()
    # 08:30 on Thursday 3 December; 2 h before is 06:30, inside quiet hours.
    start = datetime(2026, 12, 3, 8, 30, tzinfo=CHICAGO).astimezone(UTC)
    visit = clinic.appointment(patient, start=start, kind="early")

    run(clinic, datetime(2026, 12, 2, 19, 30, tzinfo=CHICAGO))
    before = sent_texts(clinic.settings)
    run(clinic, datetime(2026, 12, 2, 19, 45, tzinfo=CHICAGO))
    evening = sent_texts(clinic.settings)
    run(clinic, datetime(2026, 12, 3, 6, 30, tzinfo=CHICAGO))

    assert before == []
    assert [text["idempotency_key"] for text in evening] == [f"appt:{visit}:v1:reminder:2h:sms"]
    assert len(sent_texts(clinic.settings)) == 1


def test_reminder_due_while_the_window_is_closed_waits_for_it(clinic: Clinic) -> None:
    patient = clinic.patient()
    clinic.add_type("wall", reminder_offsets=[{"hours": 26, "channels": ["email"]}])
    start = datetime(2026, 12, 3, 16, 0, tzinfo=CHICAGO).astimezone(UTC)
    clinic.appointment(patient, start=start, kind="wall")

    night = run(clinic, datetime(2026, 12, 2, 21, 0, tzinfo=CHICAGO))

    # Planned for 14:00 on the 2nd; this late-night run must not send it.
    assert night.total("sent") == 0
    assert clinic.outbox() == []


def test_dst_weekend_instant_and_wall_clock_steps_go_at_their_own_local_times(
    clinic: Clinic,
) -> None:
    clinic.add_type(
        "dst",
        reminder_offsets=[
            {"hours": 24, "channels": ["email"]},
            {"days_before": 1, "at": "10:00", "channels": ["sms"]},
        ],
    )
    spring = clinic.appointment(
        clinic.patient(),
        start=datetime(2026, 3, 8, 10, 0, tzinfo=CHICAGO),
        kind="dst",
        booked_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    autumn = clinic.appointment(
        clinic.patient(email="dee@example.test", phone="+13125550144"),
        start=datetime(2026, 11, 1, 10, 0, tzinfo=CHICAGO),
        kind="dst",
        booked_at=datetime(2026, 10, 1, tzinfo=UTC),
    )

    def keys_after(moment: datetime) -> list[str]:
        run(clinic, moment)
        return sorted(
            row.idempotency_key for row in clinic.outbox() if row.status is OutboxStatus.SENT
        )

    # Spring: 24 h before 10:00 CDT Sunday is 09:00 CST Saturday; "day before at 10" is 10:00.
    assert keys_after(datetime(2026, 3, 7, 8, 59, tzinfo=CHICAGO)) == []
    assert keys_after(datetime(2026, 3, 7, 9, 0, tzinfo=CHICAGO)) == [
        f"appt:{spring}:v1:reminder:24h:email"
    ]
    assert keys_after(datetime(2026, 3, 7, 10, 0, tzinfo=CHICAGO)) == [
        f"appt:{spring}:v1:reminder:24h:email",
        f"appt:{spring}:v1:reminder:d1at1000:sms",
    ]
    # Autumn: "day before at 10" comes first (10:00 CDT); 24 h before is 11:00 CDT.
    assert keys_after(datetime(2026, 10, 31, 10, 0, tzinfo=CHICAGO))[-1] == (
        f"appt:{autumn}:v1:reminder:d1at1000:sms"
    )
    assert f"appt:{autumn}:v1:reminder:24h:email" not in keys_after(
        datetime(2026, 10, 31, 10, 59, tzinfo=CHICAGO)
    )
    assert f"appt:{autumn}:v1:reminder:24h:email" in keys_after(
        datetime(2026, 10, 31, 11, 0, tzinfo=CHICAGO)
    )
    assert len(sent_mail(clinic.settings)) == 2
    assert len(sent_texts(clinic.settings)) == 2


def test_sensitive_visit_never_names_its_type(clinic: Clinic) -> None:
    patient = clinic.patient()
    clinic.appointment(patient, start=NOW + timedelta(hours=24), kind="behavioral-health")

    run(clinic, NOW)

    (message,) = sent_mail(clinic.settings)
    raw = message.as_string().lower()
    assert "behavioral" not in raw
    assert "your appointment" in text_of(message)
    assert str(calendar_of(message).walk("VEVENT")[0]["SUMMARY"]).startswith("Appointment")
    (text,) = sent_texts(clinic.settings)
    assert "behavioral" not in text["body"].lower()


def _check(clinic: Clinic, appointment_id: int, patient_id: int, status: CheckStatus) -> None:
    with transaction(clinic.factory) as session:
        payer = Payer(name="Test Plan", payer_code=f"TP{appointment_id}")
        session.add(payer)
        session.flush()
        coverage = Coverage(patient_id=patient_id, payer_id=payer.id, member_id="M1")
        session.add(coverage)
        session.flush()
        session.add(
            EligibilityCheck(
                trace=f"T{appointment_id}",
                appointment_id=appointment_id,
                coverage_id=coverage.id,
                patient_id=patient_id,
                payer_id=payer.id,
                date_of_service=NOW.date(),
                service_type="30",
                status=status,
                checked_at=NOW - timedelta(hours=1),
            )
        )


def test_unverified_coverage_asks_for_the_card_without_saying_why(clinic: Clinic) -> None:
    unverified = clinic.patient(email="un@example.test", phone=None, consents=("email",))
    verified = clinic.patient(email="ok@example.test", phone=None, consents=("email",))
    first = clinic.appointment(unverified, start=NOW + timedelta(hours=24))
    second = clinic.appointment(verified, start=NOW + timedelta(hours=24))
    _check(clinic, first, unverified, CheckStatus.UNVERIFIED)
    _check(clinic, second, verified, CheckStatus.ACTIVE)

    run(clinic, NOW)

    bodies = {str(m["To"]): text_of(m) for m in sent_mail(clinic.settings)}
    assert "bring your current insurance card" in bodies["un@example.test"]
    assert "insurance card" not in bodies["ok@example.test"]
    assert "verif" not in bodies["un@example.test"].lower()


def test_booking_confirmation_then_reschedule_notice_with_the_same_uid(clinic: Clinic) -> None:
    patient = clinic.patient()
    visit = clinic.appointment(
        patient, start=NOW + timedelta(days=5), booked_at=NOW - timedelta(minutes=1)
    )
    with transaction(clinic.factory) as session:
        enqueue_notices(session, visit, now=NOW)
        repeated = enqueue_notices(session, visit, now=NOW)
    run(clinic, NOW)
    moved_to = NOW + timedelta(days=6)
    with transaction(clinic.factory) as session:
        appointment = session.get_one(Appointment, visit)
        apply_changes(session, appointment, {"start_at": moved_to}, actor="t", source="t")
        session.flush()
        enqueue_notices(session, visit, now=NOW + timedelta(minutes=5))
    run(clinic, NOW + timedelta(minutes=5))

    assert repeated.total("queued") == 0
    confirmation, reschedule = sorted(sent_mail(clinic.settings), key=lambda m: str(m["Date"]))
    kinds = sorted(row.kind for row in clinic.outbox() if row.status is OutboxStatus.SENT)
    assert kinds == ["confirmation", "reschedule"]
    first = calendar_of(confirmation).walk("VEVENT")[0]
    second = calendar_of(reschedule).walk("VEVENT")[0]
    assert str(first["UID"]) == str(second["UID"])
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    body = text_of(reschedule)
    assert "Previous time: Sunday, December 6, 2026" in body
    assert "New time:      Monday, December 7, 2026" in body
    with clinic.factory() as session:
        moved = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "appointments", AuditEntry.field == "start_at"
            )
        ).all()
    assert len(moved) == 1


def test_spanish_patient_gets_spanish_messages(clinic: Clinic) -> None:
    patient = clinic.patient(language="es")
    clinic.appointment(patient, start=NOW + timedelta(hours=24))

    run(clinic, NOW)

    (message,) = sent_mail(clinic.settings)
    assert "cita" in text_of(message).lower()
    (text,) = sent_texts(clinic.settings)
    assert "Confirme" in text["body"]


def test_text_too_long_for_one_segment_is_skipped_not_split(clinic: Clinic) -> None:
    clinic.settings = clinic.settings.model_copy(
        update={"public_url": "https://" + "a-very-long-host-name" * 3 + ".example"}
    )
    patient = clinic.patient(consents=("sms",))
    visit = clinic.appointment(patient, start=NOW + timedelta(hours=24))

    run(clinic, NOW)

    assert sent_texts(clinic.settings) == []
    assert statuses(clinic)[f"appt:{visit}:v1:reminder:24h:sms"] == (
        OutboxStatus.SKIPPED,
        "text longer than 160 characters",
    )


def test_preview_masks_and_writes_nothing(clinic: Clinic) -> None:
    patient = clinic.patient(email="jane@example.test", phone="+13125550123")
    clinic.appointment(patient, start=NOW + timedelta(hours=30))
    clinic.appointment(clinic.patient(consents=()), start=NOW + timedelta(hours=40))

    lines = preview(clinic.factory, now=NOW, hours=48)

    assert clinic.outbox() == []
    assert sent_mail(clinic.settings) == []
    shown = {(line.offset, line.channel, line.to, line.skip) for line in lines}
    assert ("24h", "email", "j***@e***.test", None) in shown
    assert ("24h", "sms", "+1******0123", None) in shown
    assert ("24h", "email", "-", "no consent") in shown
    assert all("jane" not in line.to for line in lines)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane@example.test", "j***@e***.test"),
        ("x@localhost", "x***@l***"),
        ("+13125550123", "+1******0123"),
        (None, "-"),
        ("12345", "*****"),
    ],
)
def test_mask_address(address: str | None, masked: str) -> None:
    assert mask_address(address) == masked


class RefusingMailer:
    """A mail server that refuses every message for good (5xx after MAIL FROM)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def send(self, message: object, *, ready: object = None) -> str:
        assert isinstance(message, Wire)
        raise MailPermanentError("SMTP 554 at MAIL", smtp_code=554)


def test_a_message_refused_for_good_fails_with_a_work_item(clinic: Clinic) -> None:
    visit = clinic.appointment(
        clinic.patient(phone=None, consents=("email",)), start=NOW + timedelta(hours=24)
    )

    @asynccontextmanager
    async def refusing() -> AsyncIterator[Channels]:
        yield Channels(mailer=RefusingMailer(), sms=FileSms(clinic.settings.outbox_dir / "sms"))

    transports = Transports(open=refusing, mail_resend_safe=False, sms_resend_safe=False)
    enqueue_due(clinic.factory, now=NOW)
    ids = due_outbox_ids(clinic.factory, now=NOW)
    batch = Batch(clinic.factory, clinic.settings, transports)

    tally = asyncio.run(send_batch(batch, ids, now=NOW))

    (row,) = [row for row in clinic.outbox() if row.status is OutboxStatus.FAILED]
    assert tally.total("failed") == 1
    assert (row.appointment_id, row.attempts) == (visit, 1)
    assert "SMTP 554" in (row.error or "")
    assert [(i.kind, i.entity, i.entity_id) for i in clinic.work_items()] == [
        ("reminder_send_failed", "outbox_item", row.id)
    ]


def test_unreadable_reminder_settings_send_nothing_and_tell_the_office_manager(
    clinic: Clinic,
) -> None:
    broken = clinic.add_type("broken", reminder_offsets=[{"hours": "soon"}])
    clinic.appointment(clinic.patient(), start=NOW + timedelta(hours=24), kind="broken")

    tally = enqueue_due(clinic.factory, now=NOW)

    assert tally.cells == Tally().cells
    assert clinic.outbox() == []
    (item,) = clinic.work_items()
    assert (item.kind, item.entity, item.entity_id, item.role) == (
        "reminder_settings_invalid",
        "appointment_type",
        broken,
        "office_manager",
    )


def test_each_lane_claims_over_one_connection_for_its_whole_batch(clinic: Clinic) -> None:
    """A pool checkout per message cost a ping and a reset: two more round trips on PostgreSQL."""
    from sqlalchemy import event

    clinic.add_type("mail", reminder_offsets=[{"hours": 24, "channels": ["email"]}])
    clinic.many(40, start=NOW + timedelta(hours=23), kind="mail")
    engine = clinic.factory.kw["bind"]
    checkouts: list[object] = []

    def count(*_: object) -> None:
        checkouts.append(None)

    event.listen(engine, "checkout", count)
    try:
        tally = run(clinic, NOW)
    finally:
        event.remove(engine, "checkout", count)

    assert tally.total("sent") == 40
    # The run's reads and steps take a few; the 40 claims add one per lane, not one each.
    assert len(checkouts) < 40
    assert engine.pool.checkedout() == 0  # every lane gave its connection back
