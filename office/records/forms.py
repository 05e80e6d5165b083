"""Intake forms: what a patient fills in, as a pydantic model, its JSON Schema, its handler.

The `intake-form` webhook stores the JSON as it came; `apply_form` turns it into a
`PatientUpdate` with the PATIENT as submitter, so the review policy holds the fields it
names (name, date of birth, sex, insurance) for staff. A field left out or empty changes
nothing; a form cannot delete a value. `GET /schemas/intake-form.json` publishes
`form_schema()`, generated from the model, so the schema and the handler never disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from office.intake import IntakeRejected, Outcome
from office.models import InboxItem
from office.records.inbound import apply_inbound
from office.records.updates import (
    ConsentUpdate,
    CoverageUpdate,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Submitter,
)

__all__ = ["IntakeForm", "apply_form", "form_schema", "form_update", "parse_form"]

Text = Annotated[str, Field(max_length=200)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormAddress(_Part):
    """Home address."""

    line1: Text | None = Field(default=None, title="Street address")
    line2: Text | None = Field(default=None, title="Apartment, suite")
    city: Annotated[str, Field(max_length=100)] | None = Field(default=None, title="City")
    state: Annotated[str, Field(max_length=2)] | None = Field(
        default=None, title="State", description="Two-letter US state code."
    )
    postal_code: Annotated[str, Field(max_length=10)] | None = Field(default=None, title="ZIP")


class FormInsurance(_Part):
    """One insurance card, as the patient reads it."""

    payer_name: Text | None = Field(default=None, title="Insurance company")
    payer_code: Annotated[str, Field(max_length=80)] | None = Field(
        default=None, title="Payer id", description="The payer id on the card, if known."
    )
    member_id: Annotated[str, Field(max_length=80)] | None = Field(default=None, title="Member id")
    group_number: Annotated[str, Field(max_length=80)] | None = Field(
        default=None, title="Group number"
    )
    plan_name: Text | None = Field(default=None, title="Plan")
    rank: Literal[1, 2, 3] | None = Field(
        default=None, title="Order", description="1 primary, 2 secondary, 3 tertiary."
    )
    relationship: Literal["self", "spouse", "child", "other"] | None = Field(
        default=None, title="Patient's relationship to the card holder"
    )
    subscriber_first_name: Annotated[str, Field(max_length=100)] | None = None
    subscriber_last_name: Annotated[str, Field(max_length=100)] | None = None
    subscriber_date_of_birth: date | None = None


class IntakeForm(_Part):
    """A patient's intake or update form. Every field may be left out: nothing left out
    (or left empty) changes the record."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="officeflows intake form")

    submitted_at: AwareDatetime = Field(
        title="Submitted at", description="When the patient submitted it, with its offset."
    )
    mrn: Annotated[str, Field(max_length=40)] | None = Field(
        default=None, title="MRN", description="Set when the form was sent to a known patient."
    )
    patient_version: int | None = Field(
        default=None,
        ge=1,
        title="Record version the form was filled from",
        description="For a pre-filled form: a later change to the record makes it a review.",
    )
    first_name: Annotated[str, Field(max_length=100)] | None = None
    middle_name: Annotated[str, Field(max_length=100)] | None = None
    last_name: Annotated[str, Field(max_length=100)] | None = None
    suffix: Annotated[str, Field(max_length=20)] | None = None
    date_of_birth: date | None = None
    sex: Literal["M", "F", "U"] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    address: FormAddress | None = None
    language: Annotated[str, Field(max_length=8)] | None = Field(
        default=None, description="Preferred language: en, es, ..."
    )
    insurance: list[FormInsurance] = Field(default_factory=list, max_length=3)
    consent_email: bool | None = Field(default=None, title="Reminders by email")
    consent_sms: bool | None = Field(default=None, title="Reminders by text message")


_RELATIONSHIP = {"self": "18", "spouse": "01", "child": "19", "other": "G8"}


def form_schema() -> dict[str, Any]:
    """The form's JSON Schema (draft 2020-12), as published at /schemas/intake-form.json."""
    schema = IntakeForm.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/schemas/intake-form.json"
    return schema


def parse_form(body: bytes) -> IntakeForm:
    try:
        return IntakeForm.model_validate_json(body)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise IntakeRejected("invalid intake form: " + ", ".join(fields)) from None


def form_update(form: IntakeForm) -> PatientUpdate:
    """The normalized update a form stands for (empty strings are left out)."""
    address = form.address or FormAddress()
    consents = tuple(
        ConsentUpdate(channel, granted, "intake form")
        for channel, granted in (("email", form.consent_email), ("sms", form.consent_sms))
        if granted is not None
    )
    return PatientUpdate(
        mrn=_given(form.mrn),
        first_name=_given(form.first_name),
        middle_name=_given(form.middle_name),
        last_name=_given(form.last_name),
        suffix=_given(form.suffix),
        date_of_birth=form.date_of_birth,
        sex=form.sex,
        phone=_given(form.phone),
        email=_given(form.email),
        address_line1=_given(address.line1),
        address_line2=_given(address.line2),
        city=_given(address.city),
        state=_given(address.state),
        postal_code=_given(address.postal_code),
        language=_given(form.language),
        coverages=tuple(_coverage(card, index) for index, card in enumerate(form.insurance, 1)),
        consents=consents,
        expected_version=form.patient_version,
        occurred_at=form.submitted_at,
    )


def apply_form(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """The `intake-form` webhook's handler."""
    form = parse_form(item.body)
    batch = RecordBatch(
        (form_update(form),),
        SourceKind.FORM,
        submitter=Submitter.PATIENT,
        label=f"form {item.id}",
    )
    return apply_inbound(session, item, batch, now=now)


def _coverage(card: FormInsurance, index: int) -> CoverageUpdate:
    relationship = _RELATIONSHIP.get(card.relationship) if card.relationship else None
    return CoverageUpdate(
        payer_code=_given(card.payer_code),
        payer_name=_given(card.payer_name),
        member_id=_given(card.member_id),
        group_number=_given(card.group_number),
        plan_name=_given(card.plan_name),
        rank=card.rank or index,
        relationship_code=relationship,
        subscriber_first_name=_given(card.subscriber_first_name),
        subscriber_last_name=_given(card.subscriber_last_name),
        subscriber_date_of_birth=card.subscriber_date_of_birth,
    )


def _given(value: str | None) -> str | None:
    """A blank answer is no answer: it never erases what is on file."""
    return value if value is not None and value.strip() else None
