"""Normalized record updates: what every source (HL7 v2, FHIR, CSV, intake forms) becomes.

A parser's only job is to turn its payload into these frozen records; validation,
matching, applying and review read nothing else. Each optional field has three states:

- absent (`None`): the source said nothing about it; the stored value stays;
- a value: set it;
- `CLEAR`: the source asked for it to be deleted (HL7's `""`).

A blank never erases: a parser turns an empty cell or field into `None`, never into `CLEAR`.
Bookings (HL7 SIU, FHIR Appointment) become a `BookingUpdate`, which `office.bookings`
applies through the same handler as the bookings webhook.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal, TypeAlias, TypeVar

__all__ = [
    "CLEAR",
    "PATIENT_FIELDS",
    "BookingUpdate",
    "Clear",
    "ConsentUpdate",
    "CoverageUpdate",
    "Identifier",
    "MergeRequest",
    "PatientUpdate",
    "RecordBatch",
    "SourceKind",
    "Submitter",
    "Value",
    "from_json",
    "set_fields",
    "set_values",
    "to_json",
]


class Clear:
    """The explicit "delete this value" marker (HL7 v2 `""`); use the `CLEAR` singleton."""

    _instance: Clear | None = None

    def __new__(cls) -> Clear:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CLEAR"

    def __reduce__(self) -> str:
        return "CLEAR"


CLEAR: Final = Clear()

T = TypeVar("T")
# absent (None) = no change, a value = set, CLEAR = delete.
Value: TypeAlias = T | Clear | None


class SourceKind(StrEnum):
    """Where a batch came from; decides nothing by itself but is shown and audited."""

    HL7 = "hl7"
    FHIR = "fhir"
    CSV = "csv"
    FORM = "form"


class Submitter(StrEnum):
    """Who stands behind the data: the review policy applies when it is the patient."""

    SYSTEM = "system"  # a practice-management system, an EHR, a file export
    PATIENT = "patient"  # an intake form, a portal
    STAFF = "staff"  # a person at the office (a review they approved)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A sending system's id for the patient (HL7 PID-3 with its assigning authority,
    a FHIR identifier's system and value, a CSV export's own id)."""

    system: str
    value: str


@dataclass(frozen=True, slots=True)
class CoverageUpdate:
    """One insurance coverage, matched to the patient's by rank, else payer and member id.

    The payer is named by `payer_code` (the X12 payer id in the payers table) or, failing
    that, by its `payer_name`. `expected_version` is the coverage version the sender read
    (optimistic concurrency); a mismatch makes the update a review item.
    """

    payer_code: str | None = None
    payer_name: str | None = None
    member_id: Value[str] = None
    group_number: Value[str] = None
    plan_name: Value[str] = None
    rank: int | None = None  # 1 primary, 2 secondary, 3 tertiary
    effective_from: Value[date] = None
    effective_to: Value[date] = None
    relationship_code: Value[str] = None  # X12 INS02: 18 self, 01 spouse, 19 child, G8 other
    subscriber_first_name: Value[str] = None
    subscriber_last_name: Value[str] = None
    subscriber_date_of_birth: Value[date] = None
    subscriber_sex: Value[str] = None
    copay_on_file: Value[Decimal] = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ConsentUpdate:
    """Consent to be contacted on one channel ("email", "sms"), or its withdrawal."""

    channel: str
    granted: bool
    source: str = "records import"


@dataclass(frozen=True, slots=True)
class PatientUpdate:
    """A patient as one source sees them: who (MRN and/or sender ids) and what changed.

    `expected_version` is the patient version the sender read; `occurred_at` is when the
    source made the change (HL7 EVN-2/MSH-7, FHIR meta.lastUpdated): an update older than
    the last one applied to the patient is stale. Either way, stale becomes a review item.
    """

    mrn: str | None = None
    identifiers: tuple[Identifier, ...] = ()
    first_name: Value[str] = None
    middle_name: Value[str] = None
    last_name: Value[str] = None
    suffix: Value[str] = None
    date_of_birth: Value[date] = None
    sex: Value[str] = None  # M, F, U
    phone: Value[str] = None  # any format; validation turns it into E.164
    email: Value[str] = None
    address_line1: Value[str] = None
    address_line2: Value[str] = None
    city: Value[str] = None
    state: Value[str] = None
    postal_code: Value[str] = None
    language: Value[str] = None
    coverages: tuple[CoverageUpdate, ...] = ()
    consents: tuple[ConsentUpdate, ...] = ()
    expected_version: int | None = None
    occurred_at: datetime | None = None


# The Patient columns a PatientUpdate can set, in display order.
PATIENT_FIELDS: Final = (
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "language",
)


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """HL7 A40: the sender merged `retired` into `survivor`. Always a review item."""

    survivor: PatientUpdate
    retired_mrn: str | None = None
    retired_identifier: Identifier | None = None


@dataclass(frozen=True, slots=True)
class BookingUpdate:
    """A booking from HL7 SIU or a FHIR Appointment, before it names our rows.

    `office.bookings.apply_booking_update` resolves the patient (MRN or sender id), the
    location (our id or its name) and applies it as the bookings webhook would.
    """

    event: Literal["booked", "rescheduled", "confirmed", "cancelled"]
    external_id: str
    provider_npi: str
    appointment_type: str
    start: datetime
    occurred_at: datetime
    patient_mrn: str | None = None
    patient_identifier: Identifier | None = None
    location_id: int | None = None
    location_name: str | None = None
    duration_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """What one inbound payload (a message, a form, a file row) asks to change.

    Args:
        records: The patients (and merges) it names; applied all or nothing.
        source_kind: HL7, FHIR, CSV or a form.
        submitter: Who stands behind it; `PATIENT` brings in the review policy.
        inbox_id: The stored payload it came from (the audit's source).
        control_id: The sender's id for the payload (MSH-10, Bundle id), if any.
        label: How problems name it: "row 12", "message 4711" (no PHI).
        row: The row of the stored file it is (the audit's source says "inbox:N row R").
    """

    records: tuple[PatientUpdate | MergeRequest, ...]
    source_kind: SourceKind
    submitter: Submitter = Submitter.SYSTEM
    inbox_id: int | None = None
    control_id: str | None = None
    label: str = ""
    row: int | None = None

    @property
    def where(self) -> str:
        """How a problem names this payload: its label, else its control id or inbox id."""
        if self.label:
            return self.label
        if self.control_id:
            return f"message {self.control_id}"
        return f"inbox item {self.inbox_id}" if self.inbox_id is not None else "record"


def set_fields(update: PatientUpdate | CoverageUpdate) -> dict[str, Any]:
    """The fields the update says something about (a value or CLEAR), as name → value."""
    return {
        name: value
        for name in _VALUE_FIELDS[type(update)]
        if (value := getattr(update, name)) is not None
    }


def set_values(update: PatientUpdate | CoverageUpdate) -> dict[str, Any]:
    """`set_fields` as the values to store: CLEAR is None (the value deleted)."""
    return {
        name: None if value is CLEAR else value
        for name in _VALUE_FIELDS[type(update)]
        if (value := getattr(update, name)) is not None
    }


_NOT_VALUES = frozenset(
    {"identifiers", "coverages", "consents", "expected_version", "occurred_at", "mrn"}
    | {"payer_code", "payer_name", "rank"}
)
# Per kind of update, its value fields in order (read once: `set_fields` runs per row).
_VALUE_FIELDS: Final[dict[type, tuple[str, ...]]] = {
    kind: tuple(f.name for f in dataclasses.fields(kind) if f.name not in _NOT_VALUES)
    for kind in (PatientUpdate, CoverageUpdate)
}


# --- JSON, for review items that hold an update until a person decides -------------------


def to_json(update: PatientUpdate) -> dict[str, Any]:
    """The update as JSON-safe data (dates as ISO strings, CLEAR as {"clear": true})."""
    return _encode(update)  # type: ignore[no-any-return]


def from_json(data: dict[str, Any]) -> PatientUpdate:
    """The inverse of `to_json`."""
    return _decode_patient(data)


def _encode(value: Any) -> Any:
    if value is CLEAR:
        return {"clear": True}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, ())
        }
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


_DATES = {"date_of_birth", "effective_from", "effective_to", "subscriber_date_of_birth"}


def _scalar(name: str, raw: Any) -> Any:
    if isinstance(raw, dict) and raw.get("clear") is True:
        return CLEAR
    if raw is None:
        return None
    if name in _DATES:
        return date.fromisoformat(raw)
    if name == "occurred_at":
        return datetime.fromisoformat(raw)
    if name == "copay_on_file":
        return Decimal(raw)
    return raw


def _decode_patient(data: dict[str, Any]) -> PatientUpdate:
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if name == "identifiers":
            values[name] = tuple(Identifier(**i) for i in raw)
        elif name == "coverages":
            values[name] = tuple(
                CoverageUpdate(**{k: _scalar(k, v) for k, v in c.items()}) for c in raw
            )
        elif name == "consents":
            values[name] = tuple(ConsentUpdate(**c) for c in raw)
        else:
            values[name] = _scalar(name, raw)
    return PatientUpdate(**values)
