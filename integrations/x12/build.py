"""Write 005010X279A1 270 inquiries, and 271 answers for the sandbox payer simulator.

Output uses `*` `^` `:` `~` with no line breaks. Data values are cleaned of separators and
control characters (and folded to ASCII) so no value can change the structure; the
property tests read generated inquiries back to prove it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from integrations.x12.tokenizer import ISA_LENGTH, Separators, X12Error
from office.eligibility.types import EligibilityRequest, Person

SEPARATORS = Separators(element="*", repetition="^", component=":", segment="~")
VERSION = "005010X279A1"
_UNSAFE = frozenset("*^:~")
_MAX_CONTROL = 999_999_999
# TR3 maximum lengths of the elements we fill.
_NAME_LAST, _NAME_FIRST, _NAME_MIDDLE, _NAME_SUFFIX = 60, 35, 25, 10
_ID_MAX, _TRACE_MAX, _ENVELOPE_ID_MAX = 80, 50, 15
_AAA_LOOPS = frozenset({"2000A", "2100A", "2100B", "2100C", "2100D"})

Segment = list[str]


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the simulated payer answers; defaults give an active plan with the usual figures."""

    status: Literal["active", "inactive"] = "active"
    plan_name: str = "GOLD 123 PLAN"
    insurance_type: str = "HM"
    plan_begin: date | None = None  # None: 1 January of the date of service's year
    plan_end: date | None = None  # None: 31 December of that year
    copay: Decimal | None = Decimal("25")  # office visit (STC 98), in network
    copay_out_of_network: Decimal | None = Decimal("50")
    deductible: Decimal | None = Decimal("1500")  # individual, calendar year, in network
    deductible_remaining: Decimal | None = Decimal("500")
    coinsurance: Decimal | None = Decimal("0.2")  # the patient's share, in network
    pcp_npi: str | None = None
    pcp_name: str = "PRIMARY CARE ASSOCIATES"
    other_payer: str | None = None  # name of another payer the patient has (EB*R)
    other_payer_code: str | None = None
    auth_required: bool = False  # EB11=Y on the visit's service type
    corrected_data: bool = False  # INS04=25: the payer changed identifying data
    relationship: str = "19"  # INS02 for a dependent (19 child, 01 spouse)
    # (loop, AAA03 reason, AAA04 follow-up) sent instead of benefits; loop is one of
    # 2000A, 2100A, 2100B, 2100C, 2100D.
    aaa: tuple[tuple[str, str, str], ...] = ()


# ASCII after folding: separators and control characters go, whitespace becomes a space.
_CLEAN = {
    code: None
    if char in _UNSAFE
    else " "
    if char.isspace()
    else (char if char.isprintable() else None)
    for code, char in ((code, chr(code)) for code in range(128))
}


def _clean(value: str | None) -> str:
    """Fold to ASCII, drop separators and control characters, collapse whitespace."""
    if not value:
        return ""
    if not value.isascii():
        value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return " ".join(value.translate(_CLEAN).split())


def _text(value: str | None, limit: int) -> str:
    return _clean(value)[:limit].rstrip()


def _identifier(value: str | None, what: str, limit: int = _ID_MAX, required: bool = True) -> str:
    """An id must survive intact: refuse it rather than cut it."""
    cleaned = _clean(value)
    if required and not cleaned:
        raise X12Error(f"cannot build X12: {what} is empty")
    if len(cleaned) > limit:
        raise X12Error(f"cannot build X12: {what} is longer than {limit} characters")
    return cleaned


def _d8(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _amount(value: Decimal) -> str:
    if not value.is_finite():
        raise X12Error("cannot build X12: a scenario amount is not a finite number")
    return format(value, "f")


def _originating_id(name: str) -> str:
    """TRN03: "9" (user-assigned) and nine characters of the sender, as the TR3 lays out."""
    letters = "".join(char for char in _clean(name).upper() if char.isalnum())
    return ("9" + letters)[:10].ljust(10, "0")


def _trim(segment: Segment) -> Segment:
    """Drop trailing empty elements; X12 forbids them."""
    end = len(segment)
    while end > 1 and segment[end - 1] == "":
        end -= 1
    return segment[:end]


@dataclass(frozen=True, slots=True)
class _Envelope:
    control: int
    sender: str
    receiver: str
    when: datetime
    usage: str
    functional_id: str  # GS01: HS inquiry, HB response

    @property
    def st02(self) -> str:
        return f"{self.control:04d}"

    def isa(self) -> Segment:
        when = self.when
        return [
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            "ZZ",
            self.sender.ljust(_ENVELOPE_ID_MAX),
            "ZZ",
            self.receiver.ljust(_ENVELOPE_ID_MAX),
            when.strftime("%y%m%d"),
            when.strftime("%H%M"),
            SEPARATORS.repetition or "^",
            "00501",
            f"{self.control:09d}",
            "0",
            self.usage,
            SEPARATORS.component,
        ]

    def wrap(self, transaction_set: str, body: list[Segment]) -> str:
        """Add ISA/GS/ST and SE/GE/IEA around a body and serialize.

        Every value went through `_clean`, which drops the separators, so the text tokenizes
        back to these segments: tests/x12/test_x12_properties.py proves it on generated
        requests, where reading each 270 back here cost a tenth of the builder's time.
        """
        stamp_date, stamp_time = _d8(self.when.date()), self.when.strftime("%H%M")
        control = str(self.control)
        st = ["ST", transaction_set, self.st02, VERSION]
        se = ["SE", str(len(body) + 2), self.st02]
        gs = ["GS", self.functional_id, self.sender, self.receiver, stamp_date, stamp_time]
        gs += [control, "X", VERSION]
        segments = [
            self.isa(),
            gs,
            st,
            *(_trim(segment) for segment in body),
            se,
            ["GE", "1", control],
            ["IEA", "1", f"{self.control:09d}"],
        ]
        text = "".join(
            SEPARATORS.element.join(segment) + SEPARATORS.segment for segment in segments
        )
        if len(SEPARATORS.element.join(segments[0])) + 1 != ISA_LENGTH:
            raise X12Error("cannot build X12: ISA is not 106 characters")
        return text


def _envelope(
    control: int, sender: str, receiver: str, when: datetime | None, usage: str, gs01: str
) -> _Envelope:
    if not 1 <= control <= _MAX_CONTROL:
        raise X12Error("cannot build X12: interchange control number must be 1..999999999")
    if usage not in ("P", "T"):
        raise X12Error("cannot build X12: usage indicator must be P or T")
    return _Envelope(
        control=control,
        sender=_identifier(sender, "sender id", _ENVELOPE_ID_MAX),
        receiver=_identifier(receiver, "receiver id", _ENVELOPE_ID_MAX),
        when=when or datetime.now(UTC),
        usage=usage,
        functional_id=gs01,
    )


def _person_name(role: str, person: Person, *, with_id: bool) -> Segment:
    segment = [
        "NM1",
        role,
        "1",
        _text(person.last_name, _NAME_LAST),
        _text(person.first_name, _NAME_FIRST),
        _text(person.middle_name, _NAME_MIDDLE),
        "",
        _text(person.suffix, _NAME_SUFFIX),
    ]
    member_id = _identifier(person.member_id, "member id", required=False) if with_id else ""
    if member_id:
        segment += ["MI", member_id]
    return segment


def _demographics(person: Person) -> list[Segment]:
    if person.date_of_birth is None:
        return []
    sex = person.sex if person.sex in ("M", "F", "U") else ""
    return [["DMG", "D8", _d8(person.date_of_birth), sex]]


def _group(person: Person) -> list[Segment]:
    group = _identifier(person.group_number, "group number", 50, required=False)
    return [["REF", "6P", group]] if group else []


def _source_and_receiver(request: EligibilityRequest, payer_code: str, npi: str) -> list[Segment]:
    payer_name = _text(request.payer_name, _NAME_LAST) or payer_code
    if request.provider_first_name:
        provider = ["NM1", "1P", "1", _text(request.provider_name, _NAME_LAST)]
        provider += [_text(request.provider_first_name, _NAME_FIRST), "", "", ""]
    else:
        provider = ["NM1", "1P", "2", _text(request.provider_name, _NAME_LAST), "", "", "", ""]
    return [
        ["HL", "1", "", "20", "1"],
        ["NM1", "PR", "2", payer_name, "", "", "", "", "PI", payer_code],
        ["HL", "2", "1", "21", "1"],
        [*provider, "XX", npi],
    ]


def build_270(
    request: EligibilityRequest,
    *,
    interchange_control: int,
    sender_id: str = "OFFICEFLOWS",
    receiver_id: str | None = None,
    when: datetime | None = None,
    usage: str = "P",
) -> str:
    """Write the 270 inquiry for one request; the TRN carries `request.trace` for correlation.

    Args:
        request: The inquiry. A dependent goes in 2000D, with the TRN, DTP*291 and EQ there.
        interchange_control: Unique per interchange; ISA13, GS06 and ST02 derive from it.
        sender_id: ISA06/GS02, also the source of the TRN03 originating company id.
        receiver_id: ISA08/GS03; the payer code when not given.
        when: Creation time stamped into ISA/GS/BHT; now (UTC) when not given.
        usage: ISA15, "P" production or "T" test.

    Raises:
        X12Error: A required id is empty or too long, or an argument is out of range.
    """
    payer_code = _identifier(request.payer_code, "payer code")
    npi = _identifier(request.provider_npi, "provider NPI")
    trace = _identifier(request.trace, "trace", _TRACE_MAX)
    envelope = _envelope(
        interchange_control, sender_id, receiver_id or payer_code, when, usage, "HS"
    )
    trn = ["TRN", "1", trace, _originating_id(envelope.sender)]
    inquiry = [
        ["DTP", "291", "D8", _d8(request.date_of_service)],
        ["EQ", _identifier(request.service_type, "service type", 2)],
    ]
    subscriber = request.subscriber
    dependent = request.dependent
    body = [
        ["BHT", "0022", "13", trace, _d8(envelope.when.date()), envelope.when.strftime("%H%M")],
        *_source_and_receiver(request, payer_code, npi),
        ["HL", "3", "2", "22", "1" if dependent else "0"],
    ]
    if dependent is None:
        body += [trn, _person_name("IL", subscriber, with_id=True), *_group(subscriber)]
        body += [*_demographics(subscriber), *inquiry]
    else:
        body += [_person_name("IL", subscriber, with_id=True), *_group(subscriber)]
        body += [*_demographics(subscriber), ["HL", "4", "3", "23", "0"], trn]
        body += [_person_name("03", dependent, with_id=False), *_demographics(dependent)]
        body += inquiry
    return envelope.wrap("270", body)


def _eb(
    code: str,
    *,
    level: str = "IND",
    stc: str = "30",
    insurance: str = "",
    plan: str = "",
    period: str = "",
    amount: str = "",
    percent: str = "",
    auth: str = "",
    network: str = "",
) -> Segment:
    """An EB by element name; EB09/EB10 (quantities) are never sent by the simulator."""
    return ["EB", code, level, stc, insurance, plan, period, amount, percent, "", "", auth, network]


def _benefits(request: EligibilityRequest, scenario: Scenario) -> list[Segment]:
    insurance = _text(scenario.insurance_type, 3)
    plan = _text(scenario.plan_name, 50)
    if scenario.status == "inactive":
        return [_eb("6", insurance=insurance, plan=plan)]
    visit = _clean(request.service_type) or "30"
    auth = "Y" if scenario.auth_required else ""
    segments = [_eb("1", insurance=insurance, plan=plan, auth=auth if visit == "30" else "")]
    if visit != "30":
        segments.append(_eb("1", stc=visit, insurance=insurance, plan=plan, auth=auth, network="Y"))
    if scenario.auth_required:
        segments.append(["MSG", "PRIOR AUTHORIZATION REQUIRED"])
    money = [
        ("B", "98", "27", scenario.copay, "Y"),
        ("B", "98", "27", scenario.copay_out_of_network, "N"),
        ("C", "30", "23", scenario.deductible, "Y"),
        ("C", "30", "29", scenario.deductible_remaining, "Y"),
    ]
    for code, stc, period, value, network in money:
        if value is not None:
            amount = _amount(value)
            segments.append(
                _eb(
                    code,
                    stc=stc,
                    insurance=insurance,
                    period=period,
                    amount=amount,
                    network=network,
                )
            )
    if scenario.coinsurance is not None:
        percent = _amount(scenario.coinsurance)
        segments.append(_eb("A", insurance=insurance, percent=percent, network="Y"))
    if scenario.pcp_npi:
        npi = _identifier(scenario.pcp_npi, "PCP NPI")
        segments += [
            _eb("L", level="", stc=""),
            ["LS", "2120"],
            ["NM1", "P3", "2", _text(scenario.pcp_name, _NAME_LAST), "", "", "", "", "XX", npi],
            ["LE", "2120"],
        ]
    if scenario.other_payer:
        payer = ["NM1", "PRP", "2", _text(scenario.other_payer, _NAME_LAST)]
        other_id = _identifier(scenario.other_payer_code, "other payer code", required=False)
        if other_id:
            payer += ["", "", "", "", "PI", other_id]
        segments += [_eb("R"), ["LS", "2120"], payer, ["LE", "2120"]]
    return segments


def _aaa(scenario: Scenario, loop: str) -> list[Segment]:
    segments = []
    for where, code, followup in scenario.aaa:
        if where == loop:
            # Y: the request was valid but the payer cannot answer now (42/80); N: fix it.
            valid = "Y" if code in ("42", "80") else "N"
            segments.append(["AAA", valid, "", _text(code, 3), _text(followup, 1)])
    return segments


def build_271(
    request: EligibilityRequest,
    *,
    interchange_control: int,
    scenario: Scenario,
    when: datetime | None = None,
) -> str:
    """Answer one request as a payer would, for the sandbox simulator and tests.

    AAA in the scenario replace the benefits: payer- or provider-level AAA end the answer
    after their loop; patient-level AAA keep the patient loops without EB.

    Raises:
        X12Error: The scenario names an unknown AAA loop, or an id is empty or too long.
    """
    unknown = {loop for loop, _code, _followup in scenario.aaa} - _AAA_LOOPS
    if unknown or (request.dependent is None and any(a[0] == "2100D" for a in scenario.aaa)):
        raise X12Error("cannot build 271: scenario AAA loop is unknown or has no patient loop")
    payer_code = _identifier(request.payer_code, "payer code")
    npi = _identifier(request.provider_npi, "provider NPI")
    trace = _identifier(request.trace, "trace", _TRACE_MAX)
    envelope = _envelope(interchange_control, payer_code, "OFFICEFLOWS", when, "P", "HB")
    dos = request.date_of_service
    plan_begin = scenario.plan_begin or date(dos.year, 1, 1)
    plan_end = scenario.plan_end or date(dos.year, 12, 31)
    hl_source, nm1_payer, hl_receiver, nm1_provider = _source_and_receiver(request, payer_code, npi)

    body = [["BHT", "0022", "11", trace, _d8(envelope.when.date()), envelope.when.strftime("%H%M")]]
    if _aaa(scenario, "2000A") or _aaa(scenario, "2100A"):
        # The payer answers for itself only: no receiver or patient loops follow (HL04 = 0).
        body += [["HL", "1", "", "20", "0"], *_aaa(scenario, "2000A"), nm1_payer]
        body += _aaa(scenario, "2100A")
        return envelope.wrap("271", body)
    body += [hl_source, nm1_payer]
    provider_aaa = _aaa(scenario, "2100B")
    if provider_aaa:
        body += [["HL", "2", "1", "21", "0"], nm1_provider, *provider_aaa]
        return envelope.wrap("271", body)
    body += [hl_receiver, nm1_provider]

    subscriber, dependent = request.subscriber, request.dependent
    subscriber_aaa = _aaa(scenario, "2100C")
    has_dependent = dependent is not None and not subscriber_aaa
    echo = [
        ["TRN", "2", trace, _originating_id("OFFICEFLOWS")],
        ["TRN", "1", str(interchange_control), _originating_id(payer_code)],
    ]
    dates = [["DTP", "346", "D8", _d8(plan_begin)], ["DTP", "347", "D8", _d8(plan_end)]]
    body.append(["HL", "3", "2", "22", "1" if has_dependent else "0"])
    if not has_dependent:
        body += echo
    body += [_person_name("IL", subscriber, with_id=True), *_group(subscriber), *subscriber_aaa]
    body += _demographics(subscriber)
    if dependent is None or subscriber_aaa:
        if scenario.corrected_data and not subscriber_aaa:
            body.append(["INS", "Y", "18", "001", "25"])
        if not subscriber_aaa:
            body += [*dates, *_benefits(request, scenario)]
        return envelope.wrap("271", body)

    dependent_aaa = _aaa(scenario, "2100D")
    body += [["HL", "4", "3", "23", "0"], *echo, _person_name("03", dependent, with_id=False)]
    body += [*dependent_aaa, *_demographics(dependent)]
    if not dependent_aaa:
        relationship = _text(scenario.relationship, 2) or "19"
        ins = ["INS", "N", relationship]
        body.append([*ins, "001", "25"] if scenario.corrected_data else ins)
        body += [*dates, *_benefits(request, scenario)]
    return envelope.wrap("271", body)
