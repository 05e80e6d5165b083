"""Intake forms: the JSON Schema published at /schemas/intake-form.json is the model's and
accepts what the handler accepts; a signed form through the webhook applies the patient's
own contact changes and holds the reviewed fields for staff; a blank never erases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.webapp import create_app
from office.intake import process_item
from office.models import InboxItem, InboxStatus, Patient, RecordReview
from office.records.forms import form_schema
from office.settings import Settings
from tests.foundation.helpers import signed_headers
from tests.records.conftest import NOW, ann, apply

FORM = {
    "submitted_at": "2026-12-01T15:30:00-06:00",
    "mrn": "M1",
    "last_name": "Lee-Park",
    "phone": "312 555 0199",
    "email": "",
    "address": {"line1": "9 Elm Street", "city": "Chicago", "state": "IL", "postal_code": "60601"},
    "consent_sms": True,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(
    settings: Settings, practice: sessionmaker[Session]
) -> AsyncIterator[httpx.AsyncClient]:
    async def dispatcher(inbox_id: int, key: str) -> str:
        return "run-1"

    app = create_app(settings, practice, dispatcher=dispatcher)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://office.test") as c:
        yield c


@pytest.mark.anyio
async def test_the_published_schema_is_the_models_and_validates_a_form(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/schemas/intake-form.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema == json.loads(json.dumps(form_schema()))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(FORM, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**FORM, "sex": "X"}, schema)


@pytest.mark.anyio
async def test_a_form_applies_contact_changes_and_holds_the_name_for_staff(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    apply(practice, ann())
    body = json.dumps(FORM).encode()
    response = await client.post(
        "/webhooks/intake-form", content=body, headers=signed_headers(body, source="intake-form")
    )
    assert response.status_code == 202, response.text
    with practice() as session:
        item_id = session.scalars(select(InboxItem.id)).one()
    result = process_item(practice, item_id, now=NOW)
    assert result.status is InboxStatus.PROCESSED, result.reason
    with practice() as session:
        patient = session.scalars(select(Patient)).one()
        review = session.scalars(select(RecordReview)).one()
    # The blank email erased nothing; the name waits for a person; the rest applied.
    assert (patient.last_name, patient.phone, patient.email) == (
        "Lee",
        "+13125550199",
        "ann.lee@example.com",
    )
    assert patient.address_line1 == "9 Elm Street"
    assert (review.kind, review.fields, review.submitter) == (
        "record_review",
        ["last_name"],
        "patient",
    )


@pytest.mark.anyio
async def test_a_form_the_model_refuses_is_rejected_by_field_name(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    body = json.dumps({**FORM, "date_of_birth": "1980-02-31", "ssn": "123-45-6789"}).encode()
    response = await client.post(
        "/webhooks/intake-form", content=body, headers=signed_headers(body, source="intake-form")
    )
    assert response.status_code == 202
    with practice() as session:
        item_id = session.scalars(select(InboxItem.id)).one()
    result = process_item(practice, item_id, now=NOW)
    assert result.status is InboxStatus.REJECTED
    assert result.reason == "invalid intake form: date_of_birth, ssn"
