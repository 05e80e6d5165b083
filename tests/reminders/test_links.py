"""Patient links: compact signed tokens, a GET that changes nothing, a POST that answers once."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select

from app.links_web import link_router
from office.db import transaction
from office.ledgers import apply_changes
from office.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    LinkUse,
    OutboxItem,
    OutboxStatus,
)
from office.reminders import enqueue_due
from office.reminders.links import LinkError, link_urls, make_token, read_token
from office.settings import Settings
from tests.reminders.conftest import NOW, Clinic, sent_mail, text_of

SECRET = "test-link-secret-32-bytes-or-longer"  # as in tests/conftest.py
START = NOW + timedelta(hours=24)


# --- tokens -------------------------------------------------------------------------------


def test_token_round_trip_is_short_enough_for_a_text() -> None:
    token = make_token(SECRET, purpose="confirm", appointment_id=42, start=START)
    claim = read_token(SECRET, token, now=NOW)
    assert (claim.purpose, claim.appointment_id, claim.start) == ("confirm", 42, START)
    assert len(token) == 23
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    urls = link_urls("https://clinic.example/", SECRET, appointment_id=42, start=START)
    assert set(urls) == {"confirm_url", "cancel_url", "reschedule_url"}
    assert len(set(urls.values())) == 3
    assert all(url.startswith("https://clinic.example/a/") for url in urls.values())


def test_tampered_foreign_and_expired_tokens_are_refused() -> None:
    token = make_token(SECRET, purpose="confirm", appointment_id=42, start=START)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    # Purpose byte changed from confirm (1) to cancel (2), MAC left alone.
    swapped = "Ag" + token[2:]
    for bad in (flipped, swapped, token + "A", "", "!!!", "a" * 100):
        with pytest.raises(LinkError, match="not valid"):
            read_token(SECRET, bad, now=NOW)
    with pytest.raises(LinkError, match="not valid"):
        read_token("another-secret", token, now=NOW)
    with pytest.raises(LinkError, match="expired"):
        read_token(SECRET, token, now=START)


@given(st.text(max_size=40))
def test_any_string_is_either_a_valid_token_or_a_link_error(text: str) -> None:
    try:
        read_token(SECRET, text, now=NOW)
    except LinkError:
        return
    raise AssertionError("a random string passed as a signed token")


# --- the pages ------------------------------------------------------------------------------


class Web:
    """The router in an app of its own, called over httpx's ASGI transport."""

    def __init__(self, settings: Settings, clinic: Clinic, now: datetime) -> None:
        self.app = FastAPI()
        self.app.include_router(link_router(settings, clinic.factory, clock=lambda: now))

    def request(self, method: str, url: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://office.test") as c:
                return await c.request(method, url)

        return asyncio.run(call())

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str) -> httpx.Response:
        return self.request("POST", url)


@pytest.fixture
def web(clinic: Clinic, settings: Settings) -> Web:
    return Web(settings, clinic, NOW)


def _visit(clinic: Clinic) -> int:
    return clinic.appointment(clinic.patient(), start=START)


def _url(visit: int, purpose: str) -> str:
    token = make_token(SECRET, purpose=purpose, appointment_id=visit, start=START)  # type: ignore[arg-type]
    return f"/a/{token}"


def _state(clinic: Clinic, visit: int) -> tuple[object, ...]:
    with clinic.factory() as session:
        appointment = session.get_one(Appointment, visit)
        uses = session.scalar(select(func.count()).select_from(LinkUse))
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
        return (appointment.status, appointment.version, appointment.confirmed_at, uses, audits)


def test_get_asks_and_changes_nothing(clinic: Clinic, web: Web) -> None:
    visit = _visit(clinic)
    before = _state(clinic, visit)

    for _ in range(3):  # a mail scanner, a link preview, the patient
        page = web.get(_url(visit, "confirm"))

    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert "Yes, I will be there" in page.text
    assert "Wednesday, December 2, 2026, 10:00 AM (CST)" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert _state(clinic, visit) == before


def test_post_confirms_once_and_a_second_post_is_refused(clinic: Clinic, web: Web) -> None:
    visit = _visit(clinic)
    url = _url(visit, "confirm")

    first = web.post(url)
    after_first = _state(clinic, visit)
    second = web.post(url)
    looked = web.get(url)

    assert first.status_code == 200
    assert "confirmed" in first.text
    assert after_first[0] is AppointmentStatus.CONFIRMED
    assert after_first[2] == NOW
    assert after_first[3] == 1
    assert second.status_code == 409
    assert "already used" in second.text
    assert looked.status_code == 409
    assert _state(clinic, visit) == after_first
    with clinic.factory() as session:
        audit = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "appointments", AuditEntry.field == "status"
            )
        ).one()
    assert (audit.actor, audit.before, audit.after) == ("patient-link", "booked", "confirmed")


def test_post_cancel_withdraws_pending_reminders_and_queues_the_notice(
    clinic: Clinic, web: Web
) -> None:
    visit = _visit(clinic)
    enqueue_due(clinic.factory, now=NOW)  # 24 h email and text pending

    answer = web.post(_url(visit, "cancel"))
    clinic.run(NOW + timedelta(minutes=1))

    assert answer.status_code == 200
    assert "cancelled" in answer.text
    rows = {(row.kind, row.channel, row.status) for row in clinic.outbox()}
    assert ("reminder", "email", OutboxStatus.WITHDRAWN) in rows
    assert ("reminder", "sms", OutboxStatus.WITHDRAWN) in rows
    assert ("cancellation", "email", OutboxStatus.SENT) in rows
    (message,) = sent_mail(clinic.settings)
    assert "canceled" in text_of(message).lower() or "cancelled" in text_of(message).lower()


def test_post_reschedule_opens_a_front_desk_work_item(clinic: Clinic, web: Web) -> None:
    visit = _visit(clinic)

    answer = web.post(_url(visit, "reschedule"))

    assert answer.status_code == 200
    (item,) = clinic.work_items()
    assert (item.kind, item.entity, item.entity_id, item.role) == (
        "reschedule_request",
        "appointment",
        visit,
        "front_desk",
    )
    with clinic.factory() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.entity == "appointments")).one()
        assert (audit.field, audit.actor) == ("reschedule_requested", "patient-link")
        assert session.get_one(Appointment, visit).status is AppointmentStatus.BOOKED


def test_forged_expired_and_outdated_links_get_a_friendly_page(
    clinic: Clinic, settings: Settings, web: Web
) -> None:
    visit = _visit(clinic)
    forged_token = make_token(
        "not-our-secret", purpose="confirm", appointment_id=visit, start=START
    )
    forged = web.post(f"/a/{forged_token}")
    expired = Web(settings, clinic, START).post(_url(visit, "confirm"))
    with transaction(clinic.factory) as session:
        appointment = session.get_one(Appointment, visit)
        apply_changes(
            session, appointment, {"start_at": START + timedelta(days=1)}, actor="t", source="t"
        )
    moved = web.post(_url(visit, "confirm"))

    assert (forged.status_code, expired.status_code, moved.status_code) == (404, 410, 409)
    assert "This link is not valid." in forged.text
    assert "This link has expired." in expired.text
    assert "has changed" in moved.text
    assert "(312) 555-0100" in moved.text or "+13125550100" in moved.text
    assert "Traceback" not in forged.text + expired.text + moved.text
    assert _state(clinic, visit)[0] is AppointmentStatus.BOOKED


def test_the_confirm_link_in_a_sent_reminder_works(clinic: Clinic, web: Web) -> None:
    visit = _visit(clinic)
    clinic.run(NOW)
    (message,) = sent_mail(clinic.settings)
    match = re.search(r"Confirm:\s+\S+(/a/[A-Za-z0-9_-]+)", text_of(message))
    assert match is not None

    answer = web.post(match.group(1))

    assert answer.status_code == 200
    assert _state(clinic, visit)[0] is AppointmentStatus.CONFIRMED
    # Confirmed and stop-on-confirm: nothing else is queued for this visit.
    clinic.run(START - timedelta(hours=2))
    with clinic.factory() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.status == OutboxStatus.SENT)
        )
    assert sent == 2  # the 24 h email and text, nothing after the confirmation


def test_spanish_patient_sees_a_spanish_page(clinic: Clinic, web: Web) -> None:
    visit = clinic.appointment(clinic.patient(language="es"), start=START)
    page = web.get(_url(visit, "cancel"))
    assert "¿Quiere cancelar su cita" in page.text
    assert 'lang="es"' in page.text


# --- one spelling per token, one answer per claim, two keys during a rotation ---------------


def _spellings(token: str) -> list[str]:
    """Other spellings lenient base64 decoders read as the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    spare = [token[:-1] + alphabet[last ^ bits] for bits in (1, 2, 3)]  # the 2 unused bits
    return [
        token + "=",
        token + "==",
        token.replace("-", "+").replace("_", "/"),
        f"{token[:10]}\n{token[10:]}",
        f" {token}",
        f"{token}%3D",
        *spare,
    ]


def _token_with_both_odd_characters() -> tuple[int, str]:
    for appointment_id in range(1, 10_000):
        token = make_token(SECRET, purpose="reschedule", appointment_id=appointment_id, start=START)
        if "-" in token and "_" in token:
            return appointment_id, token
    raise AssertionError("no token with both - and _")


def test_only_the_canonical_spelling_of_a_token_is_read() -> None:
    _, token = _token_with_both_odd_characters()
    assert read_token(SECRET, token, now=NOW).purpose == "reschedule"
    for spelling in _spellings(token):
        assert spelling != token
        with pytest.raises(LinkError, match="not valid"):
            read_token(SECRET, spelling, now=NOW)


def test_a_reschedule_link_answers_once_however_it_is_spelled(clinic: Clinic, web: Web) -> None:
    visit = _visit(clinic)
    token = make_token(SECRET, purpose="reschedule", appointment_id=visit, start=START)

    first = web.post(f"/a/{token}")
    others = [web.post(f"/a/{spelling}") for spelling in _spellings(token) if "\n" not in spelling]

    assert first.status_code == 200
    assert all("already used" in r.text or "not valid" in r.text for r in others)
    with clinic.factory() as session:
        assert session.scalar(select(func.count()).select_from(LinkUse)) == 1
    requests = [i for i in clinic.work_items() if i.kind == "reschedule_request"]
    assert len(requests) == 1


def test_links_signed_with_the_previous_key_keep_working_during_a_rotation(
    clinic: Clinic, settings: Settings
) -> None:
    new_key = "the-new-link-key-also-32-bytes-or-more"
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(new_key), "secret_key_previous": SecretStr(SECRET)}
    )
    web = Web(rotated, clinic, NOW)
    confirm, cancel = _visit(clinic), _visit(clinic)
    old_link = make_token(SECRET, purpose="confirm", appointment_id=confirm, start=START)
    same_claims = make_token(new_key, purpose="confirm", appointment_id=confirm, start=START)
    stranger = make_token("x" * 40, purpose="cancel", appointment_id=cancel, start=START)

    assert "confirmed" in web.post(f"/a/{old_link}").text.lower()
    assert "already used" in web.post(f"/a/{same_claims}").text
    assert "not valid" in web.post(f"/a/{stranger}").text
    assert read_token(rotated.link_keys(), same_claims, now=NOW).appointment_id == confirm
    after = Web(settings.model_copy(update={"secret_key": SecretStr(new_key)}), clinic, NOW)
    assert "not valid" in after.get(f"/a/{old_link}").text
