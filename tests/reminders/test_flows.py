"""The flows through the Prefect engine (few, on the session's one harness), and the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar
from prefect.logging import disable_run_logger
from typer.testing import CliRunner

from app.cli_reminders import reminders_app
from flows import reminders as reminder_flows
from flows.reminders import send_appointment_notices, send_reminders
from flows.runtime import use_office
from office.contracts.mail import MailAmbiguousError, MailRetryableError
from office.models import OutboxStatus
from office.reminders import DeliveryDeferred
from office.settings import Settings
from tests.reminders.conftest import NOW, Clinic, delivered_files, parse_eml, sent_mail

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def _install(clinic: Clinic, settings: Settings) -> None:
    use_office(settings, clinic.factory.kw["bind"])


async def _artifact(key: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    data = found[0].data
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else list(data or [])
    return rows


def test_send_reminders_flow_returns_counts_and_publishes_a_phi_free_table(
    clinic: Clinic, settings: Settings
) -> None:
    patient = clinic.patient(email="jane.doe@example.test", first_name="Jane")
    clinic.appointment(patient, start=NOW + timedelta(hours=24))
    _install(clinic, settings)

    counts = asyncio.run(send_reminders(now=NOW))
    again = asyncio.run(send_reminders(now=NOW + timedelta(minutes=15)))
    rows = asyncio.run(_artifact("reminder-run"))

    assert counts["sent_email"] == 1
    assert counts["sent_sms"] == 1
    assert counts["reminder"] == 2
    assert counts["skipped"] == 1  # the 72 h step, superseded
    assert counts["late_run"] == 0
    assert again["sent_email"] == again["sent_sms"] == 0
    assert rows
    assert all(set(row) == {"kind", "channel", "outcome", "count"} for row in rows)
    dumped = json.dumps(rows).lower()
    assert "jane" not in dumped
    assert "example.test" not in dumped


def test_booking_notice_flow_writes_an_eml_a_standards_parser_reads_back(
    clinic: Clinic, settings: Settings
) -> None:
    patient = clinic.patient()
    visit = clinic.appointment(
        patient, start=datetime.now(UTC) + timedelta(days=3), booked_at=datetime.now(UTC)
    )
    _install(clinic, settings)

    counts = asyncio.run(send_appointment_notices(visit))

    assert counts["confirmation"] == 1
    (path,) = delivered_files(settings.outbox_dir, ".eml")
    message = parse_eml(path.read_bytes())
    assert message.get_content_type() == "multipart/mixed"
    calendar_parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    (part,) = calendar_parts
    assert part.get_param("method") == "REQUEST"
    calendar = Calendar.from_ical(part.get_content())  # type: ignore[attr-defined]
    event = calendar.walk("VEVENT")[0]
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"appt-{visit}@lakeside.test"
    assert int(event["SEQUENCE"]) == 1
    attachments = [p.get_filename() for p in message.iter_attachments()]  # type: ignore[attr-defined]
    assert attachments == ["invite.ics"]
    (row,) = [r for r in clinic.outbox() if r.kind == "confirmation"]
    assert (row.status, row.message_id) == (OutboxStatus.SENT, str(message["Message-ID"]))


def test_late_run_computes_from_the_real_clock(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from prefect.runtime import flow_run

    use_office(settings)
    stale = datetime.now(UTC) - timedelta(hours=3)
    monkeypatch.setattr(flow_run, "scheduled_start_time", stale, raising=False)
    with disable_run_logger():
        moment, late = reminder_flows._clock(None)
    assert late is True
    assert moment - stale > timedelta(hours=2)
    given, flagged = reminder_flows._clock(NOW)
    assert (given, flagged) == (NOW, False)
    # Without an offset, as a form or `prefect deployment run` may give it: practice time.
    assert reminder_flows._clock(datetime(2026, 12, 1, 10, 0)) == (NOW, False)


def test_dry_run_lists_ids_and_counts_and_records_and_sends_nothing(
    clinic: Clinic, settings: Settings
) -> None:
    patient = clinic.patient(email="jane.doe@example.test", first_name="Jane")
    visit = clinic.appointment(patient, start=NOW + timedelta(hours=24))
    _install(clinic, settings)

    counts = asyncio.run(send_reminders(now=datetime(2026, 12, 1, 10, 0), dry_run=True))
    rows = asyncio.run(_artifact("reminder-dry-run"))

    assert counts == {"would_send": 2, "would_skip": 1, "dry_run": 1}
    assert clinic.outbox() == []
    assert sent_mail(settings) == []
    assert {(row["appointment_id"], row["channel"], row["would"]) for row in rows} == {
        (visit, "email", "send"),
        (visit, "sms", "send"),
        (visit, "email", "skip"),
    }
    assert all(
        set(row) == {"appointment_id", "kind", "offset", "channel", "would", "why"} for row in rows
    )
    dumped = json.dumps(rows).lower()
    assert "jane" not in dumped
    assert "example.test" not in dumped
    assert "5550123" not in dumped

    sent = asyncio.run(send_reminders(now=NOW))
    assert (sent["sent_email"], sent["sent_sms"]) == (1, 1)


class _State:
    def __init__(self, data: BaseException) -> None:
        self.data = data


def test_batches_are_retried_only_for_not_now_never_after_an_ambiguous_send() -> None:
    assert reminder_flows._retryable(None, None, _State(DeliveryDeferred("x")))
    assert reminder_flows._retryable(None, None, _State(MailRetryableError("x")))
    assert not reminder_flows._retryable(None, None, _State(MailAmbiguousError("x")))
    assert not reminder_flows._retryable(None, None, _State(ValueError("x")))


def _env(settings: Settings) -> dict[str, str]:
    return {
        "OFFICE_HOME": str(settings.home),
        "OFFICE_DATABASE_URL": settings.db_url,
        "OFFICE_SECRET_KEY": settings.require_secret_key(),
        "COLUMNS": "200",
    }


def test_cli_preview_masks_recipients_and_writes_nothing(
    clinic: Clinic, settings: Settings
) -> None:
    clinic.appointment(
        clinic.patient(email="jane@example.test", phone="+13125550123"),
        start=NOW + timedelta(hours=30),
    )

    result = CliRunner().invoke(
        reminders_app, ["preview", "--hours", "48", "--now", NOW.isoformat()], env=_env(settings)
    )

    assert result.exit_code == 0, result.output
    assert "j***@e***.test" in result.output
    assert "+1******0123" in result.output
    assert "jane@" not in result.output
    assert "5550123" not in result.output
    assert "skip: superseded" not in result.output
    assert "to send" in result.output
    assert clinic.outbox() == []
    assert sent_mail(settings) == []


def test_cli_run_sends_through_the_flow(clinic: Clinic, settings: Settings) -> None:
    clinic.appointment(clinic.patient(), start=NOW + timedelta(hours=24))

    result = CliRunner().invoke(
        reminders_app, ["run", "--now", NOW.isoformat()], env=_env(settings)
    )

    assert result.exit_code == 0, result.output
    assert "sent_email" in result.output
    assert len(sent_mail(settings)) == 1


def test_cli_without_a_link_secret_says_so_in_one_line(settings: Settings) -> None:
    env = _env(settings)
    env["OFFICE_SECRET_KEY"] = ""
    result = CliRunner().invoke(reminders_app, ["run"], env=env)
    assert result.exit_code == 1
    assert "OFFICE_SECRET_KEY" in result.output
    assert "Traceback" not in result.output
