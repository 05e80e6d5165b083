"""The practice file's schema: what each section may say, checked before anything applies.

A mistake anywhere (an unknown time zone, an NPI whose check digit is wrong, reminder
offsets the reminders cannot read, a manager who is not on staff) stops the whole file
with the paths of what is wrong, so a half-imported practice never happens.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from office.intake import IntakeRejected
from office.models import StaffStatus
from office.records.validate import US_STATES
from office.reminders.policy import OffsetError, parse_offsets

__all__ = [
    "AppointmentTypeEntry",
    "ClinicEntry",
    "PayerEntry",
    "PracticeEntry",
    "PracticeFile",
    "ProviderEntry",
    "StaffEntry",
    "npi_is_valid",
    "parse_practice",
]

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Phone = Annotated[str, Field(pattern=_E164.pattern, description="E.164, e.g. +13125550100")]


class PracticeEntry(_Entry):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    phone: Phone | None = None
    email_domain: Annotated[str, Field(max_length=200)] | None = None


class Address(_Entry):
    line1: Annotated[str, Field(max_length=200)] | None = None
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    state: str | None = None
    postal_code: Annotated[str, Field(pattern=r"\d{5}(-\d{4})?")] | None = None

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in US_STATES:
            raise ValueError("not a US state code")
        return value.upper() if value else value


class ClinicEntry(_Entry):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: str
    phone: Phone | None = None
    address: Address = Address()
    hours: dict[str, tuple[str, str]] = Field(
        default_factory=dict, description='{"mon": ["08:00", "17:00"]}; a day left out is closed'
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        for day, (opens, closes) in value.items():
            if day not in _DAYS:
                raise ValueError(f"{day}: days are mon, tue, wed, thu, fri, sat, sun")
            if not (_HHMM.fullmatch(opens) and _HHMM.fullmatch(closes)) or opens >= closes:
                raise ValueError(f"{day}: hours are two HH:MM times, opening first")
        return value


def npi_is_valid(npi: str) -> bool:
    """Ten digits whose last is the Luhn check digit over "80840" and the first nine."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed("80840" + npi[:9])):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


class ProviderEntry(_Entry):
    npi: str
    first_name: Annotated[str, Field(min_length=1, max_length=100)]
    last_name: Annotated[str, Field(min_length=1, max_length=100)]
    credential: Annotated[str, Field(max_length=20)] | None = None
    active: bool = True

    @field_validator("npi")
    @classmethod
    def _npi(cls, value: str) -> str:
        if not npi_is_valid(value):
            raise ValueError("not a valid NPI (10 digits, Luhn check digit)")
        return value


class PayerEntry(_Entry):
    code: Annotated[str, Field(min_length=1, max_length=80)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    adapter: Annotated[str, Field(min_length=1, max_length=40)] = "x12"
    settings: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    rate_per_second: Annotated[float, Field(gt=0, le=1000)] | None = None


class AppointmentTypeEntry(_Entry):
    code: Annotated[str, Field(min_length=1, max_length=40)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    minutes: Annotated[int, Field(ge=5, le=480)] = 30
    service_type: Annotated[str, Field(min_length=1, max_length=3)] = "30"
    sensitive: bool = False
    reminders: list[dict[str, Any]] | None = Field(
        default=None, description="Reminder offsets; left out means the practice default"
    )
    stop_on_confirm: bool = True
    send_confirmation: bool = True
    send_change_notices: bool = True

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        try:
            parse_offsets(value)
        except OffsetError as exc:
            raise ValueError(str(exc)) from None
        return value


class StaffEntry(_Entry):
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"[^@\s]+@[^@\s]+")]
    first_name: Annotated[str, Field(min_length=1, max_length=100)]
    last_name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Annotated[str, Field(min_length=1, max_length=40)]
    clinic: str | None = None
    manager: str | None = Field(default=None, description="The manager's email, also in staff")
    start_date: date
    end_date: date | None = None
    status: Literal["pending", "active", "leave", "inactive"] = StaffStatus.ACTIVE.value
    role_lead: bool = False


class PracticeFile(_Entry):
    """The whole file; every section but `practice` may be left out."""

    practice: PracticeEntry
    clinics: list[ClinicEntry] = Field(default_factory=list)
    providers: list[ProviderEntry] = Field(default_factory=list)
    payers: list[PayerEntry] = Field(default_factory=list)
    appointment_types: list[AppointmentTypeEntry] = Field(default_factory=list)
    staff: list[StaffEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> PracticeFile:
        for section, key in (
            ("clinics", "name"),
            ("providers", "npi"),
            ("payers", "code"),
            ("appointment_types", "code"),
            ("staff", "email"),
        ):
            keys = [getattr(entry, key).lower() for entry in getattr(self, section)]
            if len(keys) != len(set(keys)):
                raise ValueError(f"{section}: two entries with the same {key}")
        emails = {s.email.lower() for s in self.staff}
        clinics = {c.name for c in self.clinics}
        for index, person in enumerate(self.staff):
            if person.manager is not None and person.manager.lower() not in emails:
                raise ValueError(f"staff.{index}.manager: not an email listed under staff")
            if person.clinic is not None and person.clinic not in clinics:
                raise ValueError(f"staff.{index}.clinic: not a clinic listed under clinics")
        return self


def parse_practice(body: bytes) -> PracticeFile:
    """The file as a `PracticeFile`, or `IntakeRejected` naming each wrong path."""
    try:
        document = yaml.safe_load(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise IntakeRejected("the practice file is not UTF-8 YAML") from None
    try:
        return PracticeFile.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:20]:
            path = ".".join(str(p) for p in error["loc"]) or "file"
            problems.append(f"{path}: {error['msg']}")
        raise IntakeRejected("invalid practice file: " + "; ".join(problems)) from None
