"""Faults, asserted at a real SMTP server in another process: drops, 4xx, 5xx, ambiguity, SIGKILL.

Every run here is the send-reminders flow's steps through its tasks' own functions
(`run_reminder_steps`); the killed process runs the same (tests/reminders/sender_child.py).

The guarantee under test (see office/reminders/recovery.py): every due message is
delivered exactly once, except that a process killed mid-send leaves at most one
message per lane in doubt (a batch sends over OFFICE_SMTP_CONNECTIONS lanes, 4 here).
Over SMTP each of those is marked "unknown" with a work item and never resent
(delivered at most once); over the file outbox, which is idempotent on the
Message-ID, it is sent again and so delivered exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from prefect.logging import disable_run_logger
from sqlalchemy import select

from office.models import AuditEntry, OutboxStatus, Patient
from office.reminders import DEFAULT_LEASE, DeliveryDeferred, Tally
from office.settings import Settings
from testkit.smtp_sink import Sink
from tests.reminders.conftest import NOW, Clinic, delivered_files, sent_mail, smtp_settings

REPO = Path(__file__).resolve().parents[2]
EMAIL_24H = [{"hours": 24, "channels": ["email"]}]
NO_WAIT = (0.01, 0.02)


def run(clinic: Clinic, settings: Settings, now: datetime = NOW) -> Tally:
    return clinic.run(now, settings, retry_delays=NO_WAIT)


def sent_ids(clinic: Clinic) -> list[str]:
    return [str(row.message_id) for row in clinic.outbox() if row.status is OutboxStatus.SENT]


def test_connection_dropped_after_every_300th_message_delivers_all_900_once(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(900, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory("--drop-every", "300")

    tally = run(clinic, smtp_settings(clinic.settings, sink.port))

    counts = sink.counts()
    assert tally.flat()["sent_email"] == 900
    assert len(counts) == 900
    assert set(counts.values()) == {1}
    assert set(counts) == set(sent_ids(clinic))


def test_a_batch_sends_over_as_many_connections_as_the_setting_says(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(40, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory()
    settings = smtp_settings(clinic.settings, sink.port)

    tally = run(clinic, settings.model_copy(update={"smtp_connections": 3}))

    assert tally.total("sent") == 40
    assert len(sink.connections()) == 3
    assert set(sink.counts().values()) == {1}


def test_transient_4xx_is_retried_and_delivered_once(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(3, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory("--defer-mail", "2")

    tally = run(clinic, smtp_settings(clinic.settings, sink.port))

    assert tally.total("sent") == 3
    assert sorted(sink.counts().values()) == [1, 1, 1]


def test_server_refusing_everything_leaves_messages_pending_for_the_next_run(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(5, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory("--defer-mail", "1000")
    settings = smtp_settings(clinic.settings, sink.port)

    try:
        run(clinic, settings)
    except DeliveryDeferred:
        pass
    else:
        raise AssertionError("a server that defers everything must fail the batch")

    assert sink.ids() == []
    assert {row.status for row in clinic.outbox()} == {OutboxStatus.PENDING}
    later = sink_factory()
    tally = run(clinic, smtp_settings(clinic.settings, later.port), NOW + timedelta(minutes=15))
    assert tally.total("sent") == 5
    assert len(later.counts()) == 5


def test_rejected_address_is_marked_undeliverable_with_a_work_item(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    bounced = clinic.patient(email="gone@bounce.test", phone=None, consents=("email",))
    fine = clinic.patient(email="fine@example.test", phone=None, consents=("email",))
    clinic.appointment(bounced, start=NOW + timedelta(hours=24), kind="mail")
    clinic.appointment(bounced, start=NOW + timedelta(hours=24, minutes=5), kind="mail")
    clinic.appointment(fine, start=NOW + timedelta(hours=24), kind="mail")
    clinic.appointment(bounced, start=NOW + timedelta(hours=48), kind="mail")
    sink = sink_factory("--reject-rcpt", "bounce.test")
    settings = smtp_settings(clinic.settings, sink.port)

    run(clinic, settings)
    run(clinic, settings, NOW + timedelta(hours=24))

    # Only fine@ received anything: after the 550, gone@ is not tried again, in the
    # same batch (second visit) or the next day (third visit).
    assert len(sink.ids()) == 1
    failed = [row for row in clinic.outbox() if row.status is OutboxStatus.FAILED]
    assert len(failed) == 1
    assert "SMTP 550" in (failed[0].error or "")
    later = [row for row in clinic.outbox() if row.patient_id == bounced and row.id != failed[0].id]
    assert {row.error for row in later if row.status is OutboxStatus.SKIPPED} == {
        "email undeliverable"
    }
    with clinic.factory() as session:
        assert session.get_one(Patient, bounced).email_undeliverable is True
        audit = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "patients", AuditEntry.field == "email_undeliverable"
            )
        ).one()
    assert (audit.entity_id, audit.after, audit.actor) == (bounced, "True", "flow:reminders")
    items = [(i.kind, i.entity, i.entity_id) for i in clinic.work_items()]
    assert ("email_rejected", "patient", bounced) in items


def test_ambiguous_send_is_marked_unknown_and_never_resent(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    doubtful = clinic.patient(email="who@knows.test", phone=None, consents=("email",))
    clinic.appointment(doubtful, start=NOW + timedelta(hours=24))
    clinic.many(2, start=NOW + timedelta(hours=24))
    sink = sink_factory("--drop-after-data", "knows.test")
    settings = smtp_settings(clinic.settings, sink.port)

    first = run(clinic, settings)
    second = run(clinic, settings, NOW + timedelta(minutes=15))

    unknown = [row for row in clinic.outbox() if row.status is OutboxStatus.UNKNOWN]
    assert [row.patient_id for row in unknown] == [doubtful]
    assert first.total("unknown") == 1
    assert first.total("sent") == 2  # the others still went, over a new connection
    assert second.total("sent") == second.total("unknown") == 0
    assert ("reminder_delivery_unknown", "outbox_item", unknown[0].id) in [
        (i.kind, i.entity, i.entity_id) for i in clinic.work_items()
    ]


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OFFICE_HOME": str(settings.home),
            "OFFICE_DATABASE_URL": settings.db_url,
            "OFFICE_SECRET_KEY": settings.require_secret_key(),
            "OFFICE_MAILER": settings.mailer,
            "OFFICE_SMTP_PORT": str(settings.smtp_port),
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def _kill_after(count: Callable[[], int], settings: Settings, at: int) -> int:
    """Start a sender process and SIGKILL it once `count()` reaches `at`; returns its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reminders.sender_child", NOW.isoformat()],
        cwd=REPO,
        env=_child_env(settings),
    )
    try:
        while count() < at:
            if child.poll() is not None:
                break
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    return child.returncode


def test_sigkill_mid_batch_over_smtp_leaves_at_most_one_message_per_connection_in_doubt(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    total = 400
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(total, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory()
    settings = smtp_settings(clinic.settings, sink.port)
    at = random.randrange(20, total - 60)

    code = _kill_after(lambda: len(sink.ids()), settings, at)
    in_doubt = [row for row in clinic.outbox() if row.status is OutboxStatus.SENDING]
    after = run(clinic, settings, NOW + DEFAULT_LEASE + timedelta(minutes=1))

    assert code == -signal.SIGKILL, f"killed after {at} messages"
    assert settings.smtp_connections == 4
    assert len(in_doubt) <= settings.smtp_connections
    rows = clinic.outbox()
    assert len(rows) == total
    assert {row.status for row in rows} <= {OutboxStatus.SENT, OutboxStatus.UNKNOWN}
    unknown = [row for row in rows if row.status is OutboxStatus.UNKNOWN]
    assert [row.id for row in unknown] == [row.id for row in in_doubt]
    assert after.total("unknown") == len(in_doubt)
    counts = sink.counts()
    assert max(counts.values()) == 1, "a message was delivered twice"
    assert all(counts[message_id] == 1 for message_id in sent_ids(clinic))
    for row in unknown:
        assert counts[str(row.message_id)] in (0, 1)
        assert ("reminder_delivery_unknown", row.id) in [
            (i.kind, i.entity_id) for i in clinic.work_items()
        ]
    assert sum(counts.values()) == len(sent_ids(clinic)) + sum(
        counts[str(row.message_id)] for row in unknown
    )


def test_sigkill_mid_batch_over_the_file_outbox_delivers_every_message_exactly_once(
    clinic: Clinic,
) -> None:
    total = 300
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(total, start=NOW + timedelta(hours=23), kind="mail")
    outbox = clinic.settings.outbox_dir
    at = random.randrange(20, total - 60)

    code = _kill_after(lambda: len(delivered_files(outbox, ".eml")), clinic.settings, at)
    in_doubt = [row for row in clinic.outbox() if row.status is OutboxStatus.SENDING]
    after = run(clinic, clinic.settings, NOW + DEFAULT_LEASE + timedelta(minutes=1))

    assert code == -signal.SIGKILL, f"killed after {at} messages"
    assert len(in_doubt) <= clinic.settings.smtp_connections
    assert after.total("requeued") == len(in_doubt)
    assert {row.status for row in clinic.outbox()} == {OutboxStatus.SENT}
    delivered = Counter(str(message["Message-ID"]) for message in sent_mail(clinic.settings))
    assert set(delivered.values()) == {1}
    assert set(delivered) == set(sent_ids(clinic))
    assert len(delivered) == total


def test_two_runs_at_once_send_nothing_twice(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(300, start=NOW + timedelta(hours=23), kind="mail")
    sink = sink_factory()
    settings = smtp_settings(clinic.settings, sink.port)
    tallies: list[Tally] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait()
            tallies.append(run(clinic, settings))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    # Held around both runs: each run's own (nested) hold must not re-enable the
    # run loggers while the other is still sending.
    with disable_run_logger():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    counts = sink.counts()
    assert len(counts) == 300
    assert set(counts.values()) == {1}
    assert sum(t.total("sent") for t in tallies) == 300
    assert {row.status for row in clinic.outbox()} == {OutboxStatus.SENT}


def test_back_to_back_runs_send_nothing_twice(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    clinic.many(20, start=NOW + timedelta(hours=24))
    sink = sink_factory()
    settings = smtp_settings(clinic.settings, sink.port)

    run(clinic, settings)
    run(clinic, settings)
    run(clinic, settings, NOW + timedelta(minutes=15))

    counts = sink.counts()
    assert len(counts) == 20
    assert set(counts.values()) == {1}


def _leave_one_in_flight(clinic: Clinic) -> int:
    """Record a due reminder and claim it, as a run killed mid-send leaves it."""
    from office.db import transaction
    from office.ledgers import claim_outbox
    from office.messages import message_id_for
    from office.reminders import enqueue_due

    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(1, start=NOW + timedelta(hours=23), kind="mail")
    enqueue_due(clinic.factory, now=NOW)
    (row,) = clinic.outbox()
    with transaction(clinic.factory) as session:
        message_id = message_id_for(row.idempotency_key, "lakeside.test")
        assert claim_outbox(
            session, row.id, now=NOW, recipient=row.recipient, message_id=message_id
        )
    return row.id


def test_in_flight_row_over_smtp_becomes_unknown_after_its_lease_not_before(
    clinic: Clinic, sink_factory: Callable[..., Sink]
) -> None:
    row_id = _leave_one_in_flight(clinic)
    sink = sink_factory()
    settings = smtp_settings(clinic.settings, sink.port)

    early = run(clinic, settings, NOW + DEFAULT_LEASE - timedelta(seconds=1))
    late = run(clinic, settings, NOW + DEFAULT_LEASE + timedelta(seconds=1))

    assert early.total("unknown") == 0
    assert late.total("unknown") == 1
    (row,) = clinic.outbox()
    assert (row.id, row.status) == (row_id, OutboxStatus.UNKNOWN)
    assert sink.ids() == []
    assert ("reminder_delivery_unknown", row_id) in [
        (i.kind, i.entity_id) for i in clinic.work_items()
    ]


def test_in_flight_row_over_the_file_outbox_is_sent_again_with_the_same_id(
    clinic: Clinic,
) -> None:
    row_id = _leave_one_in_flight(clinic)

    tally = run(clinic, clinic.settings, NOW + DEFAULT_LEASE + timedelta(seconds=1))

    (row,) = clinic.outbox()
    assert tally.total("requeued") == 1
    assert (row.id, row.status, row.attempts) == (row_id, OutboxStatus.SENT, 2)
    (message,) = sent_mail(clinic.settings)
    assert str(message["Message-ID"]) == row.message_id
