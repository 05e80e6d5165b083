"""Poisoned rows: a bad recipient or a message that cannot be built is skipped with a reason
code and a work item, the rest of the batch goes, and nothing Prefect keeps quotes the row."""

from __future__ import annotations

import asyncio
import logging
import traceback
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging import disable_run_logger
from prefect.logging.handlers import APILogHandler
from sqlalchemy import update

from flows.reminders import record_due, send_reminders
from flows.runtime import TaskFailed, use_office, withhold_row_data
from office.db import transaction
from office.models import OutboxStatus, Patient
from office.reminders import prebuild
from office.reminders import send as send_module
from office.settings import Settings, SettingsError
from tests.reminders.conftest import NOW, Clinic, sent_mail, sent_texts

START = NOW + timedelta(hours=24)
POISON = {
    "crlf": ("email", "x@y.test\r\nBcc: evil@z.test", "bad_recipient:control_character"),
    "semicolon": ("email", "semi;colon@x.test", "bad_recipient:list_separator"),
    "list": ("email", "first@x.test, second@y.test", "bad_recipient:list_separator"),
    "phone": ("phone", "+1312;5550199", "bad_recipient:list_separator"),
}
NAMES = {"crlf": "Quillon", "semicolon": "Zephyrine", "list": "Ottoline", "phone": "Barnabus"}
PHI = [
    "evil@z.test",
    "x@y.test",
    "semi;colon",
    "first@x.test",
    "second@y.test",
    "5550199",
    *NAMES.values(),
]


def poison(clinic: Clinic, patient_id: int, field: str, value: str) -> None:
    """Store a value as a row written around the entry checks would (an old row, raw SQL)."""
    with transaction(clinic.factory) as session:
        session.execute(
            update(Patient.__table__).where(Patient.id == patient_id).values({field: value})
        )


def poisoned_clinic(clinic: Clinic, good: int = 20) -> dict[str, int]:
    """`good` plain patients and one per poison, each with a visit tomorrow; name -> patient id."""
    clinic.many(good, start=START)
    patients = {}
    for name, (field, value, _) in POISON.items():
        consents = ("sms",) if field == "phone" else ("email",)
        patient = clinic.patient(consents=consents, first_name=NAMES[name])
        poison(clinic, patient, field, value)
        clinic.appointment(patient, start=START)
        patients[name] = patient
    return patients


def test_bad_recipients_are_skipped_with_a_reason_and_the_others_all_go(clinic: Clinic) -> None:
    patients = poisoned_clinic(clinic)

    clinic.run(NOW)
    again = clinic.run(NOW + timedelta(minutes=15))

    mail = sent_mail(clinic.settings)
    assert len(mail) == 20
    assert not sent_texts(clinic.settings)
    assert all("@example.test" in str(m["To"]) and "Bcc" not in m for m in mail)
    rows = clinic.outbox()
    for name, patient in patients.items():
        mine = [r for r in rows if r.patient_id == patient]
        assert mine, name
        assert all(r.status is OutboxStatus.SKIPPED and r.recipient == "" for r in mine)
        assert POISON[name][2] in {r.error for r in mine}
    items = [i for i in clinic.work_items() if i.kind == "recipient_invalid"]
    assert sorted(i.patient_id for i in items) == sorted(patients.values())
    assert not any(a in repr(i.detail) + i.summary for i in items for a in PHI)
    assert again.total("sent") == 0


def test_a_row_poisoned_after_it_was_queued_is_caught_at_send_time(clinic: Clinic) -> None:
    patient = clinic.patient(consents=("email",), first_name="Quillon")
    clinic.appointment(patient, start=START)
    clinic.many(2, start=START)
    use_office(clinic.settings, clinic.factory.kw["bind"])
    with disable_run_logger():
        record_due.fn(NOW)
    pending = [r for r in clinic.outbox() if r.patient_id == patient]
    assert OutboxStatus.PENDING in {r.status for r in pending}
    poison(clinic, patient, "email", POISON["crlf"][1])

    tally = clinic.run(NOW)

    assert tally.total("sent") == 2
    mine = [r for r in clinic.outbox() if r.patient_id == patient]
    assert {r.status for r in mine} == {OutboxStatus.SKIPPED}
    assert "bad_recipient:control_character" in {r.error for r in mine}
    assert [i.patient_id for i in clinic.work_items() if i.kind == "recipient_invalid"] == [patient]


def test_a_message_that_cannot_be_built_is_skipped_and_the_batch_goes_on(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic.many(3, start=START)
    victim = clinic.patient(email="victim@example.test", phone=None, consents=("email",))
    clinic.appointment(victim, start=START)
    real = send_module.compose_email

    def compose(draft: Any, settings: Settings, secret: str) -> Any:
        if draft.recipient == "victim@example.test":
            # What icalendar does: the refused value in the message.
            raise ValueError(f"cannot write {draft.recipient} for Ava")
        return real(draft, settings, secret)

    monkeypatch.setattr(send_module, "compose_email", compose)

    tally = clinic.run(NOW)

    assert tally.total("sent") == 3
    mine = [r for r in clinic.outbox() if r.patient_id == victim]
    assert OutboxStatus.SENT not in {r.status for r in mine}
    (row,) = [r for r in mine if r.error == "message_not_built:ValueError"]
    assert row.status is OutboxStatus.SKIPPED
    (item,) = [i for i in clinic.work_items() if i.kind == "message_not_built"]
    assert item.detail["outbox_id"] == row.id
    assert "victim" not in repr(item.detail) + item.summary


def test_a_draft_the_helper_process_cannot_build_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = object()

    def compose(draft: Any, settings: Any, secret: str) -> Any:
        if draft == "bad":
            raise ValueError("x@y.test")
        return built

    monkeypatch.setattr(prebuild, "compose_email", compose)
    assert prebuild.build_emails(["good", "bad", "good"], None, "s") == [built, None, built]  # type: ignore[arg-type]


# --- through the Prefect engine -----------------------------------------------------------


async def _recorded(run_ids: list[UUID]) -> list[str]:
    """Every state message, run name and log line the Prefect API kept for these runs."""
    await APILogHandler.aflush()
    texts: list[str] = []
    async with get_client() as client:
        for run_id in run_ids:
            run = await client.read_flow_run(run_id)
            texts += [repr(run.parameters), run.name, repr(run.state and run.state.message)]
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids))
        )
        texts += [log.message for log in logs]
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
        )
        texts += [t.name + repr(t.state and t.state.message) for t in tasks]
    return texts


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_prefect_keeps_no_address_or_name_of_a_poisoned_run(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    poisoned_clinic(clinic, good=3)
    use_office(clinic.settings, clinic.factory.kw["bind"])
    caplog.set_level(logging.DEBUG)

    fine = asyncio.run(send_reminders(now=NOW, return_state=True))
    # Then a library error that quotes a row escapes the send loop (a database driver's
    # parameters, say): the task fails, and Prefect is told only the error's type.
    real = send_module.load_visits

    def load_visits(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        raise RuntimeError(f"cannot use {POISON['crlf'][1]} of {NAMES['crlf']}: {found!r}")

    monkeypatch.setattr(send_module, "load_visits", load_visits)
    for name in POISON:
        clinic.appointment(clinic.patient(consents=("email",), first_name=NAMES[name]), start=START)
    failed = asyncio.run(send_reminders(now=NOW + timedelta(minutes=15), return_state=True))

    assert fine.is_completed()
    assert fine.result()["sent_email"] == 3
    assert failed.is_failed()
    run_ids = [fine.state_details.flow_run_id, failed.state_details.flow_run_id]
    texts = asyncio.run(_recorded([r for r in run_ids if r is not None]))
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    assert any("TaskFailed: RuntimeError" in text for text in texts), "the failure was recorded"
    for text in texts:
        for secret in PHI:
            assert secret not in text, f"{secret!r} leaked into {text[:160]!r}"


def test_what_escapes_a_task_keeps_our_errors_and_withholds_the_text_of_others() -> None:
    with pytest.raises(SettingsError, match="OFFICE_SECRET_KEY"), withhold_row_data():
        raise SettingsError("OFFICE_SECRET_KEY is not set: it signs patient links")
    with pytest.raises(TaskFailed) as caught, withhold_row_data():
        raise ValueError("A CAL-ADDRESS value may not contain CR or LF: 'mailto:x@y.test\r\n'")
    assert str(caught.value) == "ValueError (its message is withheld: it may quote a row)"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert "test_poison.py" in "".join(traceback.format_tb(caught.value.__traceback__))
