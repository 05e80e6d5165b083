"""FHIR R4 in: Patient, Coverage and Appointment resources, alone or in a Bundle.

Each resource is validated with the `fhir.resources` models (R4B, whose Patient, Coverage,
Appointment and Bundle read R4's JSON) before anything maps it; a problem names the entry
and the element path, never a value. A Patient becomes a `PatientUpdate` (its identifiers
as sender ids, its logical id as one more so that a later Coverage or Appointment naming
`Patient/<id>` finds it), a Coverage joins the update of the patient it covers (from the
same Bundle, else by that reference alone), an Appointment becomes a `BookingUpdate`.
Elements left out change nothing: FHIR resources are read as partial updates here, never
as a PUT that would erase what they leave out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from office.intake import IntakeRejected, Outcome
from office.models import InboxItem
from office.records.inbound import apply_inbound
from office.records.updates import (
    BookingUpdate,
    CoverageUpdate,
    Identifier,
    PatientUpdate,
    RecordBatch,
    SourceKind,
)

__all__ = ["FHIR_ID_SYSTEM", "FhirError", "apply_fhir", "read_fhir"]

# The sender ids a FHIR patient's logical id is kept under.
FHIR_ID_SYSTEM: Final = "fhir:Patient"
NPI_SYSTEM: Final = "http://hl7.org/fhir/sid/us-npi"
# Never kept: social security numbers.
_SKIPPED_SYSTEMS: Final = frozenset(
    {"http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1"}
)
_GENDER: Final = {"male": "M", "female": "F", "other": "U", "unknown": "U"}
# FHIR subscriber-relationship codes to X12 INS02.
_RELATIONSHIP: Final = {"self": "18", "spouse": "01", "child": "19", "other": "G8"}
_BOOKING: Final[dict[str, Literal["booked", "cancelled"]]] = {
    "proposed": "booked",
    "pending": "booked",
    "booked": "booked",
    "cancelled": "cancelled",
    "noshow": "cancelled",
    "entered-in-error": "cancelled",
}
_MODELS: Final[dict[str, Any]] = {
    "Patient": Patient,
    "Coverage": Coverage,
    "Appointment": Appointment,
}
MAX_ENTRIES: Final = 50_000


class FhirError(ValueError):
    """The payload cannot be read; `problems` name entries and element paths, no values."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems)[:2000])
        self.problems = problems


def read_fhir(body: bytes, *, label: str = "fhir") -> list[RecordBatch | BookingUpdate]:
    """What a FHIR payload asks to change: patient batches first, then bookings."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FhirError(["not JSON"]) from None
    if not isinstance(document, dict):
        raise FhirError(["not a FHIR resource (a JSON object with resourceType)"])
    entries = _entries(document)
    problems: list[str] = []
    patients: dict[str, PatientUpdate] = {}  # by reference ("Patient/7", "urn:uuid:…")
    order: list[str] = []
    aliases: dict[str, str] = {}  # "Patient/<id>" of a Bundle entry with a urn:uuid fullUrl
    coverages: list[tuple[str, str, CoverageUpdate]] = []
    bookings: list[BookingUpdate] = []
    for where, reference, raw in entries:
        kind = raw.get("resourceType") if isinstance(raw, dict) else None
        model = _MODELS.get(str(kind))
        if model is None:
            problems.append(f"{where}: resourceType {str(kind)[:30]!r} is not read here")
            continue
        try:
            resource = model.model_validate(raw)
        except ValidationError as exc:
            paths = sorted({".".join(str(p) for p in e["loc"]) or "resource" for e in exc.errors()})
            problems.append(f"{where} {kind}: invalid {', '.join(paths)[:300]}")
            continue
        try:
            if isinstance(resource, Patient):
                key = reference or where
                patients[key] = _patient(resource)
                order.append(key)
                if resource.id:
                    aliases[f"Patient/{resource.id}"] = key
            elif isinstance(resource, Coverage):
                target = _reference(resource.beneficiary)
                coverages.append((where, target, _coverage(resource)))
            else:
                bookings.append(_appointment(resource))
        except FhirError as exc:
            problems.extend(f"{where} {kind}: {p}" for p in exc.problems)
    for where, named, coverage in coverages:
        target = aliases.get(named, named)
        if target in patients:
            update = patients[target]
            patients[target] = _with_coverage(update, coverage)
        elif target.startswith("Patient/"):
            key = target
            if key not in patients:
                identifier = Identifier(FHIR_ID_SYSTEM, key.removeprefix("Patient/"))
                patients[key] = PatientUpdate(identifiers=(identifier,))
                order.append(key)
            patients[key] = _with_coverage(patients[key], coverage)
        else:
            problems.append(f"{where} Coverage: beneficiary names no patient in this payload")
    if problems:
        raise FhirError(problems)
    batches: list[RecordBatch | BookingUpdate] = [
        RecordBatch((patients[key],), SourceKind.FHIR, label=f"{label} {key}"[:80]) for key in order
    ]
    return [*batches, *bookings]


def _entries(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(where, reference, resource) for a Bundle's entries or one resource."""
    if document.get("resourceType") != "Bundle":
        return [("resource", "", document)]
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(["Bundle.entry must be a list"])
    if len(entries) > MAX_ENTRIES:
        raise FhirError([f"more than {MAX_ENTRIES} entries; split the Bundle"])
    found = []
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise FhirError([f"{where}: no resource"])
        resource = entry["resource"]
        full_url = entry.get("fullUrl")
        reference = ""
        if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
            reference = full_url
        elif resource.get("resourceType") and resource.get("id"):
            reference = f"{resource['resourceType']}/{resource['id']}"
        found.append((where, reference, resource))
    return found


def _patient(resource: Patient) -> PatientUpdate:
    identifiers = []
    mrn = None
    for identifier in resource.identifier or []:
        system, value = identifier.system or "", identifier.value or ""
        if not value or system in _SKIPPED_SYSTEMS:
            continue
        kinds = {c.code for c in (identifier.type.coding or [])} if identifier.type else set()
        if "MR" in kinds and mrn is None and identifier.use in (None, "usual", "official"):
            mrn = value
        identifiers.append(Identifier(system or "fhir", value))
    if resource.id:
        identifiers.append(Identifier(FHIR_ID_SYSTEM, resource.id))
    name = _name(resource.name or [])
    phone, email = _telecom(resource.telecom or [])
    address = _address(resource.address or [])
    language = None
    for communication in resource.communication or []:
        codes = [c.code for c in (communication.language.coding or []) if c.code]
        if codes:
            language = codes[0].split("-")[0].lower()
            break
    updated = resource.meta.lastUpdated if resource.meta else None
    return PatientUpdate(
        mrn=mrn,
        identifiers=tuple(dict.fromkeys(identifiers)),
        first_name=name.get("given"),
        middle_name=name.get("middle"),
        last_name=name.get("family"),
        suffix=name.get("suffix"),
        date_of_birth=resource.birthDate,
        sex=_GENDER.get(resource.gender or "") if resource.gender else None,
        phone=phone,
        email=email,
        address_line1=address.get("line1"),
        address_line2=address.get("line2"),
        city=address.get("city"),
        state=address.get("state"),
        postal_code=address.get("postal_code"),
        language=language,
        occurred_at=_instant(updated),
    )


def _name(names: Iterable[Any]) -> dict[str, str]:
    chosen = None
    for name in names:
        if name.use in ("official", "usual") or chosen is None:
            if name.use not in ("old", "maiden", "anonymous"):
                chosen = name
            if name.use == "official":
                break
    if chosen is None:
        return {}
    given = [g for g in (chosen.given or []) if g]
    parts = {
        "family": chosen.family,
        "given": given[0] if given else None,
        "middle": " ".join(given[1:]) or None,
        "suffix": " ".join(chosen.suffix or []) or None,
    }
    return {k: v for k, v in parts.items() if v}


def _telecom(points: Iterable[Any]) -> tuple[str | None, str | None]:
    phones = [p for p in points if p.system in ("phone", "sms") and p.value and not p.period]
    emails = [p for p in points if p.system == "email" and p.value]
    phones.sort(key=lambda p: (p.use != "mobile", p.use != "home", p.rank or 99))
    emails.sort(key=lambda p: p.rank or 99)
    return (phones[0].value if phones else None), (emails[0].value if emails else None)


def _address(addresses: Iterable[Any]) -> dict[str, str]:
    chosen = next((a for a in addresses if a.use in (None, "home")), None)
    if chosen is None:
        return {}
    lines = [line for line in (chosen.line or []) if line]
    parts = {
        "line1": lines[0] if lines else None,
        "line2": ", ".join(lines[1:]) or None,
        "city": chosen.city,
        "state": chosen.state,
        "postal_code": chosen.postalCode,
    }
    return {k: v for k, v in parts.items() if v}


def _coverage(resource: Coverage) -> CoverageUpdate:
    payer_code = payer_name = None
    for payor in resource.payor or []:
        if payor.identifier is not None and payor.identifier.value:
            payer_code = payor.identifier.value
        payer_name = payer_name or payor.display
        if payer_code or payer_name:
            break
    if payer_code is None and payer_name is None:
        raise FhirError(["payor names no payer (identifier or display)"])
    classes = {}
    for entry in resource.class_fhir or []:
        kinds = {c.code for c in (entry.type.coding or [])}
        for code in ("group", "plan"):
            if code in kinds:
                classes[code] = entry.value
    relationship = None
    if resource.relationship is not None:
        codes = [c.code for c in (resource.relationship.coding or []) if c.code]
        relationship = _RELATIONSHIP.get(codes[0], "G8") if codes else None
    period = resource.period
    return CoverageUpdate(
        payer_code=payer_code,
        payer_name=payer_name,
        member_id=resource.subscriberId,
        group_number=classes.get("group"),
        plan_name=classes.get("plan"),
        rank=resource.order if resource.order in (1, 2, 3) else None,
        effective_from=_day(period.start) if period else None,
        effective_to=_day(period.end) if period else None,
        relationship_code=relationship,
    )


def _with_coverage(update: PatientUpdate, coverage: CoverageUpdate) -> PatientUpdate:
    return dataclasses.replace(update, coverages=(*update.coverages, coverage))


def _appointment(resource: Appointment) -> BookingUpdate:
    event = _BOOKING.get(resource.status or "")
    problems = []
    if event is None:
        problems.append(f"status {resource.status!r} is not a booking change read here")
    patient: Identifier | None = None
    npi = location = None
    for participant in resource.participant or []:
        actor = participant.actor
        if actor is None:
            continue
        reference = actor.reference or ""
        if reference.startswith("Patient/"):
            patient = Identifier(FHIR_ID_SYSTEM, reference.removeprefix("Patient/"))
        elif reference.startswith("Practitioner/") or actor.type == "Practitioner":
            if actor.identifier is not None and actor.identifier.system == NPI_SYSTEM:
                npi = actor.identifier.value
        elif reference.startswith("Location/") or actor.type == "Location":
            location = actor.display
    kind = None
    for concept in [resource.appointmentType, *(resource.serviceType or [])]:
        codes = [c.code for c in (concept.coding or []) if c.code] if concept else []
        if codes:
            kind = codes[0]
            break
    external = next((i.value for i in resource.identifier or [] if i.value), resource.id)
    updated = resource.meta.lastUpdated if resource.meta else None
    occurred = _instant(updated) or _instant(resource.created)
    for name, value in (
        ("participant (Patient)", patient),
        ("participant (Practitioner with an NPI identifier)", npi),
        ("participant (Location display)", location),
        ("appointmentType or serviceType code", kind),
        ("start", resource.start),
        ("identifier or id", external),
        ("meta.lastUpdated or created", occurred),
    ):
        if value is None:
            problems.append(f"{name} is required")
    if problems or event is None:
        raise FhirError(problems)
    start = _instant(resource.start)
    if patient is None or not (npi and location and kind and external and occurred and start):
        raise FhirError(["an element is missing"])
    return BookingUpdate(
        event=event,
        external_id=external,
        provider_npi=npi,
        appointment_type=kind,
        start=start,
        occurred_at=occurred,
        patient_identifier=patient,
        location_name=location,
        duration_minutes=resource.minutesDuration,
    )


def _reference(reference: Any) -> str:
    return str(reference.reference or "") if reference is not None else ""


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def _day(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def apply_fhir(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """The handler for stored FHIR payloads (the `fhir` webhook, `records import --fhir`):
    all of it or, with the problems named, none of it."""
    try:
        parsed = read_fhir(item.body, label=f"inbox {item.id}")
    except FhirError as exc:
        raise IntakeRejected(str(exc)) from None
    outcome = apply_inbound(session, item, parsed, now=now)
    patients = sum(1 for p in parsed if isinstance(p, RecordBatch))
    counts = (("patients", patients), ("appointments", len(parsed) - patients))
    return dataclasses.replace(outcome, counts=counts)
