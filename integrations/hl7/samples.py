"""Synthetic HL7 v2 messages shaped like a practice-management system's: ADT and SIU.

The people in them are made up. The demo feeds `demo_messages` through the MLLP listener,
the benchmark streams `adt_message`s, and the tests build theirs here, so every one of
them reads the same shapes (MSH, EVN, PID with repeated identifiers, PD1, PV1, IN1, IN2,
GT1; SCH, PID, AIS, AIL, AIP). Any delimiters can be used; values are escaped with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from office.records.hl7.wire import Encoding

__all__ = ["SampleCoverage", "SamplePatient", "adt_message", "demo_messages", "siu_message"]

FACILITY = "RIVERBEND"
APPLICATION = "PRACTICEPM"


@dataclass(frozen=True)
class SampleCoverage:
    """One IN1 (with its IN2): payer, plan, member, dates and the insured's relationship."""

    payer_code: str = "60054"
    payer_name: str = "Aetna"
    plan_id: str = "PPO-GOLD"
    member_id: str = "W123456789"
    group_number: str = "GRP-1001"
    effective: date | None = date(2025, 1, 1)
    expires: date | None = None
    relationship: str = "SEL"  # HL7 table 0063
    medicare_card: str = ""  # IN2-6


@dataclass(frozen=True)
class SamplePatient:
    """PID as sent: the practice MRN, an enterprise id, name, birth date, contact details."""

    mrn: str = "MRN10001"
    family: str = "Testperson"
    given: str = "Avery"
    middle: str = ""
    birth_date: date = date(1984, 6, 2)
    sex: str = "F"
    street: str = "12 Alder Way"
    city: str = "Springfield"
    state: str = "IL"
    postal_code: str = "62701"
    area_code: str = "217"
    local_number: str = "5550142"
    email: str = "avery.testperson@example.com"
    language: str = "eng"
    enterprise_id: str = "E-77001"


def adt_message(
    trigger: str,
    control_id: str,
    patient: SamplePatient,
    *,
    coverages: tuple[SampleCoverage, ...] = (),
    sent_at: datetime,
    encoding: Encoding | None = None,
    version: str = "2.5.1",
    retired_mrn: str = "",
    overrides: dict[str, str] | None = None,
) -> bytes:
    """An ADT (A04, A08, A28, A31, or A40 with `retired_mrn`) for one patient.

    Args:
        overrides: Raw field text by "SEG-n" ("PID-13": '""'), written as given, for tests
            that need a field cleared, emptied or malformed.
    """
    e = encoding or Encoding()
    x = _Writer(e, overrides or {})
    stamp = _stamp(sent_at)
    structure = "ADT_A39" if trigger == "A40" else "ADT_A01"
    segments = [
        x.msh(("ADT", trigger, structure), control_id, stamp, version),
        x.seg("EVN", [trigger, x.text(stamp)]),
        x.seg("PID", _pid(x, patient)),
    ]
    if trigger == "A40":
        segments.append(x.seg("MRG", [x.cx(retired_mrn, "RIVERBEND", "MR")]))
    else:
        segments.append(x.seg("PD1", ["", "", "", "", "", "", "", "", "", "", "02"]))
        segments.append(
            x.seg("PV1", ["1", "O", "", "", "", "", x.comp("1234567893", "Okafor", "Dana")])
        )
        for rank, cover in enumerate(coverages, start=1):
            segments.append(x.seg("IN1", _in1(x, rank, cover, patient)))
            segments.append(x.seg("IN2", ["", "", "", "", "", x.text(cover.medicare_card)]))
        if coverages:
            segments.append(
                x.seg("GT1", ["1", "", x.comp(patient.family, patient.given), "", _xad(x, patient)])
            )
    return ("\r".join(segments) + "\r").encode()


def siu_message(
    trigger: str,
    control_id: str,
    *,
    appointment_id: str,
    mrn: str,
    start: datetime,
    duration_minutes: int = 30,
    provider_npi: str = "1234567893",
    location: str = "Riverbend Main",
    appointment_type: str = "NEW",
    status: str = "Booked",
    sent_at: datetime,
    encoding: Encoding | None = None,
    version: str = "2.5.1",
) -> bytes:
    """An SIU (S12 new, S13 moved, S14 changed, S15 cancelled, S26 no-show) for one visit."""
    e = encoding or Encoding()
    x = _Writer(e, {})
    when = _stamp(start)
    timing = x.comp("", "", f"M{duration_minutes}", when)
    sch = [
        x.comp(appointment_id, "PM"),
        x.comp(appointment_id, "PM"),
        "",
        "",
        "",
        x.comp("ROUTINE", "Routine"),
        x.comp(appointment_type, appointment_type),
        x.comp(appointment_type, appointment_type),
        str(duration_minutes),
        "MIN",
        timing,
    ]
    sch += [""] * 13 + [x.comp(status, status)]
    segments = [
        x.msh(("SIU", trigger, "SIU_S12"), control_id, _stamp(sent_at), version),
        x.seg("SCH", sch),
        x.seg("PID", ["1", "", x.cx(mrn, "RIVERBEND", "MR")]),
        x.seg("RGS", ["1", "A"]),
        x.seg(
            "AIS",
            [
                "1",
                "",
                x.comp(appointment_type, appointment_type),
                when,
                "",
                "",
                str(duration_minutes),
                "MIN",
            ],
        ),
        x.seg("AIL", ["1", "", x.comp(location, "", "", location), "", "", when]),
        x.seg(
            "AIP",
            ["1", "", x.xcn(provider_npi, "Okafor", "Dana"), x.comp("D", "Doctor"), "", when],
        ),
    ]
    return ("\r".join(segments) + "\r").encode()


def demo_messages(
    *,
    now: datetime,
    appointment_start: datetime,
    provider_npi: str,
    location: str,
    appointment_type: str,
    coverage: SampleCoverage | None = None,
) -> list[bytes]:
    """What the demo sends over MLLP: a registration (A04), an update to it (A08) and a
    booking for the same patient (S12), in that order; `coverage` names one of the
    practice's payers."""
    patient = SamplePatient(
        mrn="MRN-HL7-1", family="Lindqvist", given="Noor", birth_date=date(1979, 3, 14)
    )
    cover = coverage or SampleCoverage()
    moved = SamplePatient(
        mrn=patient.mrn,
        family=patient.family,
        given=patient.given,
        birth_date=patient.birth_date,
        street="48 Birch Lane",
        local_number="5550177",
    )
    return [
        adt_message("A04", "DEMO-A04-1", patient, coverages=(cover,), sent_at=now),
        adt_message("A08", "DEMO-A08-1", moved, coverages=(cover,), sent_at=now),
        siu_message(
            "S12",
            "DEMO-S12-1",
            appointment_id="HL7-APPT-1",
            mrn=patient.mrn,
            start=appointment_start,
            provider_npi=provider_npi,
            location=location,
            appointment_type=appointment_type,
            sent_at=now,
        ),
    ]


class _Writer:
    """Builds segments with one message's delimiters."""

    def __init__(self, encoding: Encoding, overrides: dict[str, str]) -> None:
        self.e = encoding
        self.overrides = overrides

    def text(self, value: str) -> str:
        return self.e.escape_text(value)

    def comp(self, *parts: str) -> str:
        return self.e.component.join(self.text(p) for p in parts)

    def cx(self, value: str, authority: str, kind: str) -> str:
        return self.e.component.join([self.text(value), "", "", self.text(authority), kind])

    def xcn(self, npi: str, family: str, given: str) -> str:
        parts = [npi, family, given, "", "", "", "", "", "NPI", "", "", "", "NPI"]
        return self.e.component.join(self.text(p) for p in parts)

    def seg(self, name: str, fields: list[str]) -> str:
        values = list(fields)
        for key, raw in self.overrides.items():
            segment, _, number = key.partition("-")
            if segment == name:
                index = int(number) - 1
                values += [""] * (index + 1 - len(values))
                values[index] = raw
        return self.e.field.join([name, *values])

    def msh(self, kind: tuple[str, ...], control_id: str, stamp: str, version: str) -> str:
        # Fixed values are data too ("ADT_A01", "2.5.1", a "+0000" offset): escaped, since
        # any of their characters may be a delimiter.
        fields = [self.e.characters, APPLICATION, FACILITY, "OFFICEFLOWS", "OFFICE"]
        fields += [self.text(stamp), "", self.comp(*kind), self.text(control_id), "P"]
        fields += [self.text(version)]
        return "MSH" + self.e.field + self.e.field.join(fields)


def _pid(x: _Writer, p: SamplePatient) -> list[str]:
    e = x.e
    ids = e.repetition.join([x.cx(p.mrn, "RIVERBEND", "MR"), x.cx(p.enterprise_id, "HIE", "PI")])
    phone = e.component.join(["", "PRN", "CP", "", "1", p.area_code, p.local_number])
    email = e.component.join(["", "NET", "Internet", x.text(p.email)])
    return [
        "1",
        "",
        ids,
        "",
        x.comp(p.family, p.given, p.middle, "", "", "", "L"),
        "",
        p.birth_date.strftime("%Y%m%d"),
        p.sex,
        "",
        "",
        _xad(x, p),
        "",
        e.repetition.join([phone, email]),
        "",
        x.comp(p.language, "English", "ISO639"),
    ]


def _xad(x: _Writer, p: SamplePatient) -> str:
    return x.comp(p.street, "", p.city, p.state, p.postal_code, "USA", "H")


def _in1(x: _Writer, rank: int, c: SampleCoverage, p: SamplePatient) -> list[str]:
    fields = [""] * 49
    fields[0] = str(rank)
    fields[1] = x.comp(c.plan_id, c.plan_id)
    fields[2] = x.cx(c.payer_code, "PAYERID", "XX")
    fields[3] = x.text(c.payer_name)
    fields[7] = x.text(c.group_number)
    fields[11] = c.effective.strftime("%Y%m%d") if c.effective else ""
    fields[12] = c.expires.strftime("%Y%m%d") if c.expires else ""
    fields[15] = x.comp(p.family, p.given)
    fields[16] = x.comp(c.relationship, c.relationship)
    fields[17] = p.birth_date.strftime("%Y%m%d")
    fields[35] = x.text(c.member_id)
    fields[42] = p.sex
    fields[48] = x.cx(c.member_id, c.payer_code, "MB")
    return fields


def _stamp(moment: datetime) -> str:
    """A DTM with its offset, as careful senders write it."""
    if moment.tzinfo is None:
        return moment.strftime("%Y%m%d%H%M%S")
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
