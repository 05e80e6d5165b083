"""HL7 v2 data types read into Python values: DT/DTM, CX, XPN, XAD, XTN, CWE.

Each reader takes a `Field` (or one repetition) and returns the value, `CLEAR` when the
field was sent as `""`, or None when it was left empty: the three states of
`office.records.updates.Value`. Errors are `Hl7Error`s naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final

from office.records.hl7.wire import Field, Hl7Error, Repetition
from office.records.updates import CLEAR, Clear

__all__ = [
    "Address",
    "Name",
    "Phone",
    "read_address",
    "read_date",
    "read_instant",
    "read_name",
    "read_phones",
    "read_text",
]

# YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]: HL7's DTM (and TS component 1).
_DTM: Final = re.compile(
    r"(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})"
    r"(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?(?P<z>[+-]\d{4})?"
)


def read_text(field: Field | Repetition, component: int = 1, sub: int = 1) -> str | Clear | None:
    """One component as text: CLEAR for `""`, None when empty."""
    rep = field if isinstance(field, Repetition) else _first(field)
    if rep is None:
        return None
    if rep.cleared(component):
        return CLEAR
    text = rep.text(component, sub)
    return text or None


def read_date(field: Field, component: int = 1) -> date | Clear | None:
    """A DT or the date part of a DTM (at least YYYYMMDD)."""
    value = read_text(field, component)
    if value is None or isinstance(value, Clear):
        return value
    found = _DTM.fullmatch(value)
    if found is None or found["d"] is None:
        raise Hl7Error("not a date (YYYYMMDD)", where=field.where)
    try:
        return date(int(found["y"]), int(found["mo"]), int(found["d"]))
    except ValueError:
        raise Hl7Error("not a calendar date", where=field.where) from None


def read_instant(text: str, where: str) -> datetime | None:
    """A DTM to minute precision at least; naive when the sender gave no offset (its wall clock)."""
    if not text:
        return None
    found = _DTM.fullmatch(text)
    if found is None or found["mi"] is None:
        raise Hl7Error("not a date and time (YYYYMMDDHHMM[SS][+ZZZZ])", where=where)
    zone = None
    if found["z"]:
        sign = 1 if found["z"][0] == "+" else -1
        hours, minutes = int(found["z"][1:3]), int(found["z"][3:5])
        if hours > 14 or minutes > 59:
            raise Hl7Error("an offset beyond +/-14 hours", where=where)
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    micro = int((found["f"] or "0").ljust(6, "0"))
    try:
        return datetime(
            int(found["y"]),
            int(found["mo"]),
            int(found["d"]),
            int(found["h"]),
            int(found["mi"]),
            int(found["s"] or 0),
            micro,
            tzinfo=zone,
        )
    except ValueError:
        raise Hl7Error("not a calendar date and time", where=where) from None


@dataclass(frozen=True, slots=True)
class Name:
    """XPN: family^given^middle^suffix (each may be CLEAR or None)."""

    family: str | Clear | None
    given: str | Clear | None
    middle: str | Clear | None
    suffix: str | Clear | None


def read_name(field: Field) -> Name | Clear | None:
    """The legal name (XPN type code L) when repeated, else the first one."""
    if field.cleared:
        return CLEAR
    present = field.present
    if not present:
        return None
    legal = next((r for r in present if r.text(7).upper() == "L"), present[0])
    return Name(
        family=read_text(legal, 1),
        given=read_text(legal, 2),
        middle=read_text(legal, 3),
        suffix=read_text(legal, 4),
    )


@dataclass(frozen=True, slots=True)
class Address:
    """XAD: street^other^city^state^zip (each may be CLEAR or None)."""

    line1: str | Clear | None
    line2: str | Clear | None
    city: str | Clear | None
    state: str | Clear | None
    postal_code: str | Clear | None


def read_address(field: Field) -> Address | Clear | None:
    """The home address (XAD type H) when repeated, else the first one."""
    if field.cleared:
        return CLEAR
    present = field.present
    if not present:
        return None
    home = next((r for r in present if r.text(7).upper() in {"H", "HP"}), present[0])
    return Address(
        line1=read_text(home, 1),
        line2=read_text(home, 2),
        city=read_text(home, 3),
        state=read_text(home, 4),
        postal_code=read_text(home, 5),
    )


@dataclass(frozen=True, slots=True)
class Phone:
    """One XTN: the number as dialled, its use code (PRN, ORN, WPN, NET) and equipment."""

    number: str
    use: str
    equipment: str  # PH, CP (cell), FX, Internet
    email: str


def read_phones(field: Field) -> tuple[Phone, ...] | Clear:
    """Every repetition of an XTN field.

    Older senders put the number in component 1 ("(555)555-1234"); from v2.3 on, country,
    area and local number travel in components 5, 6 and 7 and win when present. An e-mail
    address is component 4 with equipment "Internet" (use "NET").
    """
    if field.cleared:
        return CLEAR
    phones = []
    for rep in field.present:
        area, local = rep.text(6), rep.text(7)
        if local:
            country = rep.text(5)
            extension = rep.text(8)
            number = (f"+{country} " if country else "") + f"{area}{local}"
            number += f" x{extension}" if extension else ""
        else:
            number = rep.text(1)
        equipment = rep.text(3).upper()
        use = rep.text(2).upper()
        email = rep.text(4) if equipment == "INTERNET" or use == "NET" else ""
        phones.append(Phone(number=number, use=use, equipment=equipment, email=email))
    return tuple(phones)


def _first(field: Field) -> Repetition | None:
    return field.repetitions[0] if field.repetitions else None
