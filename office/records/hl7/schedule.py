"""SIU S12/S13/S14/S15/S17/S26 into a normalized booking, applied as the bookings webhook's.

SCH-2 (else SCH-1) is the appointment's id, SCH-11 component 4 its start (else AIS-4,
AIL-6, AIP-6), SCH-9/10 (else AIS-7/8, else SCH-11's duration) its length, SCH-25 its
status; AIS-3 (else SCH-8, SCH-7) the appointment type, AIL-3 the location, AIP-3 the
provider by NPI (else PV1-7), PID-3 the patient. The event follows the trigger, except
that a status of cancelled or deleted always cancels and "confirmed" confirms.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

from office.clock import as_utc
from office.records.hl7.datatypes import read_instant
from office.records.hl7.patients import patient_ids, sent_at
from office.records.hl7.wire import Field, Hl7Error, Hl7Message, Segment
from office.records.updates import BookingUpdate

__all__ = ["location_names", "read_siu"]

Event = Literal["booked", "rescheduled", "confirmed", "cancelled"]
_BY_TRIGGER: Final[dict[str, Event]] = {
    "S12": "booked",
    "S13": "rescheduled",
    "S14": "booked",
    "S15": "cancelled",
    "S17": "cancelled",
}
_CANCELLED: Final = frozenset({"CANCELLED", "CANCELED", "DELETED", "DC"})
_NPI: Final = re.compile(r"\d{10}")
_DURATION: Final = re.compile(r"([SMHD])(\d{1,5})")
_MINUTES: Final = {"S": 1 / 60, "M": 1, "H": 60, "D": 1440}
_UNITS: Final = {"MIN": 1, "MINUTES": 1, "M": 1, "HR": 60, "H": 60, "HOURS": 60, "S": 1 / 60}


def read_siu(message: Hl7Message, *, zone: str, location_id: int | None = None) -> BookingUpdate:
    """The booking an SIU message describes; `zone` reads times sent without an offset.

    Args:
        message: A parsed SIU message.
        zone: The IANA zone of the appointment's location (its wall clock).
        location_id: Our location, when the caller resolved AIL-3 already; else the booking
            names the location by AIL-3 and the bookings handler looks it up.
    """
    trigger = message.header.trigger
    sch = _required(message, "SCH")
    pid = _required(message, "PID")
    status = sch[25].text(1).upper()
    if trigger == "S26" or status == "NOSHOW":
        raise Hl7Error("no-shows are not recorded from HL7 yet", where="MSH-9")
    event = _BY_TRIGGER.get(trigger)
    if event is None:
        raise Hl7Error("not a scheduling event read here", where="MSH-9")
    if status in _CANCELLED:
        event = "cancelled"
    elif status == "CONFIRMED" and event != "cancelled":
        event = "confirmed"
    external_id = sch[2].text(1) or sch[1].text(1)
    if not external_id:
        raise Hl7Error("no appointment id (SCH-2 or SCH-1)", where="SCH-2")
    mrn, identifiers = patient_ids(pid[3], message.header.sending_facility)
    start = _start(message, sch, zone)
    occurred = sent_at(message, zone)
    if occurred is None:
        raise Hl7Error("no time the change was made (MSH-7)", where="MSH-7")
    names = location_names(message)
    return BookingUpdate(
        event=event,
        external_id=external_id,
        provider_npi=_provider(message),
        appointment_type=_appointment_type(message, sch),
        start=start,
        occurred_at=occurred,
        patient_mrn=mrn,
        patient_identifier=None if mrn else next(iter(identifiers), None),
        location_id=location_id,
        location_name=None if location_id is not None else next(iter(names), None),
        duration_minutes=_duration(message, sch),
    )


def location_names(message: Hl7Message) -> tuple[str, ...]:
    """What AIL-3 calls the location, most specific first: point of care, facility,
    description (PL components 1, 4 and 9)."""
    ail = message.first("AIL")
    if ail is None:
        return ()
    place = ail[3]
    names = (place.text(1), place.text(4, 1), place.text(9))
    return tuple(dict.fromkeys(n for n in names if n))


# --- inside -------------------------------------------------------------------------------


def _required(message: Hl7Message, name: str) -> Segment:
    segment = message.first(name)
    if segment is None:
        raise Hl7Error(f"no {name} segment", where=name)
    return segment


def _start(message: Hl7Message, sch: Segment, zone: str) -> datetime:
    candidates: list[Field] = []
    timing = sch[11]
    for name, number in (("AIS", 4), ("AIL", 6), ("AIP", 6)):
        segment = message.first(name)
        if segment is not None:
            candidates.append(segment[number])
    text, where = timing.text(4), timing.where
    if not text:
        text, where = next(((f.text(), f.where) for f in candidates if f.text()), ("", ""))
    moment = read_instant(text, where)
    if moment is None:
        raise Hl7Error("no start time (SCH-11.4, AIS-4, AIL-6 or AIP-6)", where="SCH-11")
    return as_utc(moment, zone)


def _duration(message: Hl7Message, sch: Segment) -> int | None:
    ais = message.first("AIS")
    pairs = [(sch[9], sch[10])] + ([(ais[7], ais[8])] if ais is not None else [])
    for amount, units in pairs:
        text = amount.text()
        if not text:
            continue
        if not text.isdigit():
            raise Hl7Error("not a whole number", where=amount.where)
        factor = _UNITS.get(units.text(1).upper() or "MIN")
        if factor is None:
            raise Hl7Error("duration units not read here (MIN or HR)", where=units.where)
        return round(int(text) * factor)
    found = _DURATION.fullmatch(sch[11].text(3).upper())
    return round(int(found[2]) * _MINUTES[found[1]]) if found else None


def _appointment_type(message: Hl7Message, sch: Segment) -> str:
    ais = message.first("AIS")
    for field in ([ais[3]] if ais is not None else []) + [sch[8], sch[7]]:
        if field.text(1):
            return field.text(1)
    raise Hl7Error("no appointment type (AIS-3, SCH-8 or SCH-7)", where="AIS-3")


def _provider(message: Hl7Message) -> str:
    """The NPI among the personnel (AIP-3), else the attending doctor (PV1-7)."""
    fields = [s[3] for s in message.all("AIP")]
    pv1 = message.first("PV1")
    if pv1 is not None:
        fields.append(pv1[7])
    for field in fields:
        for rep in field.present:
            kind = (rep.text(13) or rep.text(9, 1)).upper()
            if kind == "NPI" and rep.text(1):
                return rep.text(1)
        for rep in field.present:
            if _NPI.fullmatch(rep.text(1)):
                return rep.text(1)
    raise Hl7Error("no provider NPI (AIP-3 or PV1-7)", where="AIP-3")
