"""ADT A04/A08/A28/A31 and A40 into normalized records: patients, coverages, merges.

PID gives who the patient is and how to reach them, PD1 a "no reminders" wish, each IN1
(with the IN2 after it) one coverage in priority order, and GT1 the subscriber when IN1
names none. An empty field changes nothing and `""` deletes (`CLEAR`); the rules of what
may be deleted are validation's, not this module's. PID-19 and IN2-2 (social security
numbers) are never read, nor identifiers of kinds officeflows does not keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from office.clock import as_utc
from office.records.hl7.datatypes import (
    Phone,
    read_address,
    read_date,
    read_instant,
    read_name,
    read_phones,
    read_text,
)
from office.records.hl7.wire import Field, Hl7Error, Hl7Message, Repetition, Segment
from office.records.updates import (
    CLEAR,
    Clear,
    ConsentUpdate,
    CoverageUpdate,
    Identifier,
    MergeRequest,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Value,
)

__all__ = ["KEPT_ID_TYPES", "patient_ids", "read_adt", "sent_at"]

# CX-5 identifier types kept as sender ids: medical record numbers, patient and person ids.
# Never SS (social security), DL, PPN, nor insurance numbers (those travel on the coverage).
KEPT_ID_TYPES: Final = frozenset({"", "MR", "MRT", "PI", "PT", "PN"})
_MRN_TYPES: Final = frozenset({"MR", "MRT"})
# HL7 table 0063 (insured's relationship to patient) to X12 INS02.
_RELATIONSHIP: Final = {
    "SEL": "18",
    "SPO": "01",
    "CHD": "19",
    "EME": "20",
    "UNK": "21",
    "DOM": "53",
}
# ISO 639-2 (and the one-letter codes some systems send) to the codes templates use.
_LANGUAGE: Final = {
    "ENG": "en",
    "E": "en",
    "SPA": "es",
    "S": "es",
    "FRE": "fr",
    "FRA": "fr",
    "GER": "de",
    "DEU": "de",
    "CHI": "zh",
    "ZHO": "zh",
    "VIE": "vi",
    "KOR": "ko",
    "RUS": "ru",
    "ARA": "ar",
    "POR": "pt",
    "TGL": "tl",
    "HIN": "hi",
}
# PD1-11 publicity code 01 (CDC IIS table 0215): no reminders or recalls, by any means.
_NO_REMINDERS: Final = frozenset({"01"})
_CONSENT_SOURCE = "hl7 PD1-11"


def read_adt(message: Hl7Message, *, zone: str) -> RecordBatch:
    """The records an ADT message asks to change; `zone` reads times sent without an offset."""
    header = message.header
    occurred = sent_at(message, zone)
    records: list[PatientUpdate | MergeRequest] = []
    for group in _patient_groups(message):
        update = _patient(group, occurred, header.sending_facility)
        if header.trigger == "A40":
            records.append(_merge(group, update, header.sending_facility))
        else:
            records.append(update)
    if not records:
        raise Hl7Error("no PID segment", where="PID")
    if header.trigger != "A40" and len(records) > 1:
        raise Hl7Error("more than one PID in a message that names one patient", where="PID")
    return RecordBatch(tuple(records), SourceKind.HL7, control_id=header.control_id)


def sent_at(message: Hl7Message, zone: str) -> datetime | None:
    """When the sender made the change: EVN-2, else MSH-7, as a UTC instant."""
    evn = message.first("EVN")
    text, where = (evn[2].text(), "EVN-2") if evn is not None else ("", "")
    if not text:
        text, where = message.header.sent_at, "MSH-7"
    moment = read_instant(text, where)
    return None if moment is None else as_utc(moment, zone)


def patient_ids(field: Field, facility: str) -> tuple[str | None, tuple[Identifier, ...]]:
    """PID-3 (or MRG-1): the MRN (the first MR, else an untyped first id) and the sender ids."""
    mrn = None
    identifiers = []
    for number, rep in enumerate(field.present):
        value, kind = rep.text(1), rep.text(5).upper()
        if not value or kind not in KEPT_ID_TYPES:
            continue
        if mrn is None and (kind in _MRN_TYPES or (number == 0 and not kind)):
            mrn = value
        identifiers.append(Identifier(_authority(rep, facility), value))
    return mrn, tuple(dict.fromkeys(identifiers))


# --- inside -------------------------------------------------------------------------------


class _Group:
    """The segments that speak of one patient: PID and what follows it up to the next PID."""

    def __init__(self, pid: Segment) -> None:
        self.pid = pid
        self.pd1: Segment | None = None
        self.mrg: Segment | None = None
        self.gt1: Segment | None = None
        self.insurance: list[tuple[Segment, Segment | None]] = []


def _patient_groups(message: Hl7Message) -> list[_Group]:
    groups: list[_Group] = []
    for segment in message.segments:
        if segment.name == "PID":
            groups.append(_Group(segment))
            continue
        if not groups:
            continue
        group = groups[-1]
        if segment.name == "PD1" and group.pd1 is None:
            group.pd1 = segment
        elif segment.name == "MRG" and group.mrg is None:
            group.mrg = segment
        elif segment.name == "GT1" and group.gt1 is None:
            group.gt1 = segment
        elif segment.name == "IN1":
            group.insurance.append((segment, None))
        elif segment.name == "IN2" and group.insurance and group.insurance[-1][1] is None:
            group.insurance[-1] = (group.insurance[-1][0], segment)
    return groups


def _patient(group: _Group, occurred: datetime | None, facility: str) -> PatientUpdate:
    pid = group.pid
    mrn, identifiers = patient_ids(pid[3], facility)
    name = read_name(pid[5])
    address = read_address(pid[11])
    phone, email = _contact(pid[13], pid[14])
    return PatientUpdate(
        mrn=mrn,
        identifiers=identifiers,
        first_name=_part(name, "given"),
        middle_name=_part(name, "middle"),
        last_name=_part(name, "family"),
        suffix=_part(name, "suffix"),
        date_of_birth=read_date(pid[7]),
        sex=read_text(pid[8]),
        phone=phone,
        email=email,
        address_line1=_part(address, "line1"),
        address_line2=_part(address, "line2"),
        city=_part(address, "city"),
        state=_part(address, "state"),
        postal_code=_part(address, "postal_code"),
        language=_language(pid[15]),
        coverages=_coverages(group),
        consents=_consents(group.pd1),
        occurred_at=occurred,
    )


def _merge(group: _Group, survivor: PatientUpdate, facility: str) -> MergeRequest:
    if group.mrg is None:
        raise Hl7Error("an A40 without MRG names no patient to retire", where=f"{group.pid.label}")
    mrn, identifiers = patient_ids(group.mrg[1], facility)
    if mrn is None and not identifiers:
        prior = group.mrg[4].text()  # MRG-4 prior patient id, for senders before v2.3.1
        mrn = prior or None
    return MergeRequest(
        survivor=survivor,
        retired_mrn=mrn,
        retired_identifier=None if mrn is not None else next(iter(identifiers), None),
    )


def _part(value: object, name: str) -> Value[str]:
    """One part of a name or address: CLEAR when the whole field was `""`."""
    if value is None:
        return None
    if isinstance(value, Clear):
        return CLEAR
    part: Value[str] = getattr(value, name)
    return part


def _contact(home: Field, work: Field) -> tuple[Value[str], Value[str]]:
    """The phone to reach the patient (a cell first, then home, then work) and an e-mail.

    `""` in PID-13 deletes the phone; the e-mail is deleted only by name, never with it.
    """
    phones = read_phones(home)
    if isinstance(phones, Clear):
        return CLEAR, None
    business = read_phones(work)
    others = () if isinstance(business, Clear) else business
    email = next((p.email for p in phones if p.email), None)
    numbers = [p for p in phones if p.number]
    chosen = _pick(numbers) or _pick([p for p in others if p.number])
    return (chosen.number if chosen else None), email


def _pick(phones: list[Phone]) -> Phone | None:
    for wanted in ("CP", "PRN"):
        for phone in phones:
            if wanted in (phone.equipment, phone.use):
                return phone
    return phones[0] if phones else None


def _language(field: Field) -> Value[str]:
    code = read_text(field)
    if code is None or isinstance(code, Clear):
        return code
    return _LANGUAGE.get(code.upper(), code.lower())


def _consents(pd1: Segment | None) -> tuple[ConsentUpdate, ...]:
    if pd1 is None or pd1[11].text().upper() not in _NO_REMINDERS:
        return ()
    return tuple(ConsentUpdate(channel, False, _CONSENT_SOURCE) for channel in ("email", "sms"))


def _coverages(group: _Group) -> tuple[CoverageUpdate, ...]:
    covers = []
    for order, (in1, in2) in enumerate(group.insurance, start=1):
        covers.append(_coverage(in1, in2, group.gt1, order))
    return tuple(covers)


def _coverage(in1: Segment, in2: Segment | None, gt1: Segment | None, order: int) -> CoverageUpdate:
    member = read_text(in1[36])
    if member is None:
        member = read_text(in1[49])
    if member is None and in2 is not None:
        member = read_text(in2[6]) or read_text(in2[8])  # Medicare card, Medicaid case number
    relationship = read_text(in1[17])
    if isinstance(relationship, str):
        relationship = _RELATIONSHIP.get(relationship.upper(), relationship)
    insured = read_name(in1[16])
    insured_birth, insured_sex = read_date(in1[18]), read_text(in1[43])
    if insured is None and gt1 is not None and relationship not in (None, "18"):
        insured = read_name(gt1[3])  # the guarantor stands in for a subscriber not named
        insured_birth, insured_sex = read_date(gt1[8]), read_text(gt1[9])
    priority = in1[22].text()
    rank = int(priority) if priority in {"1", "2", "3"} else order if order <= 3 else None
    return CoverageUpdate(
        payer_code=_plain(read_text(in1[3])),
        payer_name=_plain(read_text(in1[4])),
        member_id=member,
        group_number=read_text(in1[8]),
        plan_name=read_text(in1[2], 2) or read_text(in1[2], 1),
        rank=rank,
        effective_from=read_date(in1[12]),
        effective_to=read_date(in1[13]),
        relationship_code=relationship,
        subscriber_first_name=_part(insured, "given"),
        subscriber_last_name=_part(insured, "family"),
        subscriber_date_of_birth=insured_birth,
        subscriber_sex=insured_sex,
    )


def _plain(value: Value[str]) -> str | None:
    """A payer's id or name: it says which payer, so `""` cannot delete it."""
    return value if isinstance(value, str) else None


def _authority(rep: Repetition, facility: str) -> str:
    """CX-4's assigning authority as a system: an ISO OID as urn:oid (as FHIR writes it),
    else its namespace id, else the sending facility."""
    namespace, universal, kind = rep.text(4, 1), rep.text(4, 2), rep.text(4, 3).upper()
    if universal and kind == "ISO":
        return f"urn:oid:{universal}"
    return namespace or universal or facility or "hl7"
