"""Read 271 eligibility responses (and 270 inquiries) into the normalized eligibility types.

The walk follows the HL hierarchy (2000A payer, 2000B provider, 2000C subscriber, 2000D
dependent) across every ST/SE set in file order. Each EB collects the HSD/REF/DTP/AAA/MSG/III
and LS..LE 2120 entities after it, as the TR3 nests them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from integrations.x12.envelope import (
    Segment,
    Transaction,
    element,
    optional,
    parse_date,
    parse_period,
    transactions,
)
from integrations.x12.tokenizer import Separators, X12Error, tokenize
from office.eligibility.codes import (
    ACTIVE_CODES,
    INACTIVE_CODES,
    classify_aaa,
    other_payers,
    primary_care_provider,
    read_amount,
)
from office.eligibility.types import (
    Aaa,
    Benefit,
    CoverageStatus,
    EligibilityRequest,
    EligibilityResult,
    Entity,
    Network,
    Person,
)

_NETWORK: dict[str, Network] = {"Y": "in", "N": "out", "W": "both"}
_AUTHORIZATION = {"Y": True, "N": False}
_EB_ELEMENTS = 14  # EB00 (the id) through EB13
_PAYER_LEVEL, _PROVIDER_LEVEL, _SUBSCRIBER_LEVEL, _DEPENDENT_LEVEL = "20", "21", "22", "23"
# IndexError/KeyError, ValueError, InvalidOperation/OverflowError: whatever a malformed
# element could still provoke is translated at the boundary, never leaked.
_BOUNDARY_ERRORS = (LookupError, ValueError, ArithmeticError)
_AAA_REPEAT = 9  # the TR3's limit on AAA segments in each loop of a 271


def _entity(nm1: Segment) -> Entity:
    last, first = element(nm1, 3), element(nm1, 4)
    name = f"{last}, {first}" if element(nm1, 2) == "1" and last and first else last or first
    return Entity(
        role=element(nm1, 1),
        name=name or None,
        id_qualifier=optional(nm1, 8),
        identifier=optional(nm1, 9),
    )


def _add_inherited(found: list[Aaa], item: Aaa) -> None:
    """Add an AAA that every patient below its loop inherits.

    Every patient's result carries a copy of these, so an answer with more AAA in one loop
    than the TR3 allows is refused: thousands of them copied into thousands of patients made
    reading a hostile answer quadratic.
    """
    if sum(1 for known in found if known.loop == item.loop) >= _AAA_REPEAT:
        raise X12Error(f"more than {_AAA_REPEAT} AAA in loop {item.loop}")
    found.append(item)


def _aaa(segment: Segment, loop: str) -> Aaa:
    code = element(segment, 3)
    return Aaa(
        loop=loop,
        code=code,
        followup=optional(segment, 4),
        valid_request=element(segment, 1) == "Y",
        action=classify_aaa(loop, code),
    )


@dataclass(slots=True)
class _BenefitDraft:
    """An EB and the segments that belong to it, collected until the next EB or HL."""

    eb: Segment
    messages: list[str] = field(default_factory=list)
    dates: dict[str, str] = field(default_factory=dict)
    entities: list[Entity] = field(default_factory=list)
    aaa: list[Aaa] = field(default_factory=list)

    def build(self, separators: Separators) -> Benefit:
        # One strip per element up front: this runs for every EB of every 271 parsed.
        eb = [value.strip() for value in self.eb[:_EB_ELEMENTS]]
        eb += [""] * (_EB_ELEMENTS - len(eb))
        stcs = eb[3].split(separators.repetition) if separators.repetition else [eb[3]]
        procedure = None
        if eb[13]:
            parts = [part.strip() for part in eb[13].split(separators.component)]
            procedure = ":".join(parts) if any(parts) else None
        return Benefit(
            code=eb[1],
            coverage_level=eb[2] or None,
            service_types=tuple(code.strip() for code in stcs if code.strip()),
            insurance_type=eb[4] or None,
            plan_name=eb[5] or None,
            time_period=eb[6] or None,
            amount=read_amount(eb[7]),
            percent=read_amount(eb[8]),
            quantity_qualifier=eb[9] or None,
            quantity=read_amount(eb[10]),
            authorization_required=_AUTHORIZATION.get(eb[11]),
            network=_NETWORK.get(eb[12], "unknown"),
            procedure=procedure,
            messages=tuple(self.messages),
            dates=dict(self.dates),
            entities=tuple(self.entities),
            aaa=tuple(self.aaa),
        )


@dataclass(slots=True)
class _Patient:
    """One 2000C/2000D loop as read so far."""

    is_dependent: bool
    subscriber: _Patient | None = None
    member_id: str | None = None
    traces: list[str] = field(default_factory=list)
    group_number: str | None = None
    plan_reference: str | None = None
    periods: dict[str, tuple[date, date, bool]] = field(default_factory=dict)
    corrected: bool = False
    loop_aaa: list[Aaa] = field(default_factory=list)  # 2100C/D
    aaa: list[Aaa] = field(default_factory=list)  # 2100C/D and 2110C/D, in file order
    benefits: list[_BenefitDraft] = field(default_factory=list)
    named: bool = False

    @property
    def loops(self) -> tuple[str, str]:
        return ("2100D", "2110D") if self.is_dependent else ("2100C", "2110C")

    def read(self, segment: Segment) -> None:
        """Take one segment of this patient's 2100 or 2110 loops."""
        tag = segment[0].strip()
        if tag == "EB":
            self.benefits.append(_BenefitDraft(segment))
        elif self.benefits:
            self._read_benefit_part(tag, segment, self.benefits[-1])
        else:
            self._read_patient_part(tag, segment)

    def _read_patient_part(self, tag: str, segment: Segment) -> None:
        if tag == "NM1" and not self.named:
            self.named = True
            self.member_id = optional(segment, 9)
        elif tag == "TRN" and element(segment, 1) == "2":
            # TRN*2 echoes the inquirer's trace; TRN*1s are the payer's or clearinghouse's own.
            value = element(segment, 2)
            if value:
                self.traces.append(value)
        elif tag == "REF":
            qualifier = element(segment, 1)
            if qualifier == "6P" and self.group_number is None:
                self.group_number = optional(segment, 2)
            elif qualifier == "18" and self.plan_reference is None:
                self.plan_reference = optional(segment, 3) or optional(segment, 2)
        elif tag == "DTP":
            period = parse_period(element(segment, 2), element(segment, 3))
            if period is not None:
                is_range = element(segment, 2) == "RD8"
                self.periods.setdefault(element(segment, 1), (*period, is_range))
        elif tag == "INS":
            self.corrected = self.corrected or element(segment, 4) == "25"
        elif tag == "AAA":
            item = _aaa(segment, self.loops[0])
            _add_inherited(self.loop_aaa, item)
            self.aaa.append(item)

    def _read_benefit_part(self, tag: str, segment: Segment, benefit: _BenefitDraft) -> None:
        if tag == "NM1":
            # 2120 entity; tolerated without its LS, since NM1 has no other place after an EB.
            benefit.entities.append(_entity(segment))
        elif tag == "MSG":
            text = element(segment, 1)
            if text:
                benefit.messages.append(text)
        elif tag == "DTP":
            fmt, value = element(segment, 2), element(segment, 3)
            period = parse_period(fmt, value)
            if period is not None:
                begin, end = period
                shown = f"{begin}/{end}" if fmt == "RD8" else begin.isoformat()
                benefit.dates.setdefault(element(segment, 1), shown)
        elif tag == "AAA":
            item = _aaa(segment, self.loops[1])
            benefit.aaa.append(item)
            self.aaa.append(item)

    def begin_end(self, begin: str, end: str) -> tuple[date | None, date | None]:
        first, last = self.periods.get(begin), self.periods.get(end)
        return (first[0] if first else None, last[1] if last else None)

    def range_of(self, qualifier: str) -> tuple[date | None, date | None]:
        period = self.periods.get(qualifier)
        if period is None or not period[2]:
            return None, None
        return period[0], period[1]


@dataclass(slots=True)
class _Response:
    """One 271 transaction set as read: the payer, transaction-level AAA and patient loops."""

    payer_code: str | None = None
    aaa: list[Aaa] = field(default_factory=list)  # 2000A, 2100A, 2100B
    patients: list[_Patient] = field(default_factory=list)


def _read_response(transaction: Transaction) -> _Response:
    response = _Response()
    by_hl: dict[str, _Patient] = {}
    level: str | None = None
    patient: _Patient | None = None
    # The subscriber a dependent falls back to; kept as we go, since searching back through the
    # patients for it made a chain of dependent loops quadratic.
    last_subscriber: _Patient | None = None
    named = False
    for position, segment in transaction.segments:
        tag = segment[0].strip()
        if tag == "HL":
            level, named, patient = element(segment, 3), False, None
            if level == _SUBSCRIBER_LEVEL:
                patient = last_subscriber = _Patient(is_dependent=False)
            elif level == _DEPENDENT_LEVEL:
                parent = by_hl.get(element(segment, 2))
                if parent is None or parent.is_dependent:
                    parent = last_subscriber
                patient = _Patient(is_dependent=True, subscriber=parent)
            if patient is not None:
                response.patients.append(patient)
                by_hl[element(segment, 1)] = patient
        elif patient is not None:
            patient.read(segment)
        elif tag in ("EB", "AAA") and level not in (_PAYER_LEVEL, _PROVIDER_LEVEL):
            raise X12Error(f"segment {position}: {tag} outside a known HL loop")
        elif tag == "EB":
            raise X12Error(f"segment {position}: EB without a patient loop")
        elif tag == "NM1":
            if level == _PAYER_LEVEL and not named:
                response.payer_code = optional(segment, 9)
            named = True
        elif tag == "AAA":
            payer_loop = "2100A" if named else "2000A"
            loop = payer_loop if level == _PAYER_LEVEL else "2100B"
            _add_inherited(response.aaa, _aaa(segment, loop))
    return response


def _pick(
    benefits: tuple[Benefit, ...], codes: frozenset[str], preferred: list[str]
) -> Benefit | None:
    candidates = [b for b in benefits if b.code in codes]
    for stc in preferred:
        for benefit in candidates:
            if stc in benefit.service_types:
                return benefit
    return candidates[0] if candidates else None


def _result(
    response: _Response, patient: _Patient | None, separators: Separators, service_type: str | None
) -> EligibilityResult:
    if patient is None:
        return EligibilityResult(
            status=CoverageStatus.UNVERIFIED,
            payer_code=response.payer_code,
            aaa=tuple(response.aaa),
        )
    subscriber = patient.subscriber
    benefits = tuple(draft.build(separators) for draft in patient.benefits)
    # A rejection of the subscriber also concerns the dependents covered through them.
    inherited = subscriber.loop_aaa if subscriber else []
    aaa = (*response.aaa, *inherited, *patient.aaa)
    preferred = [service_type, "30"] if service_type else ["30"]
    active = _pick(benefits, ACTIVE_CODES, preferred)
    inactive = _pick(benefits, INACTIVE_CODES, preferred)
    if aaa:
        status = CoverageStatus.UNVERIFIED
    elif active is not None:
        status = CoverageStatus.ACTIVE
    elif inactive is not None:
        status = CoverageStatus.INACTIVE
    else:
        status = CoverageStatus.UNVERIFIED
    plan_name, insurance_type = _plan(benefits, active or inactive)

    plan_begin, plan_end = patient.begin_end("346", "347")
    eligibility_begin, eligibility_end = patient.begin_end("356", "357")
    for qualifier in ("291", "307"):
        begin, end = patient.range_of(qualifier)
        plan_begin, plan_end = plan_begin or begin, plan_end or end
    begin, end = patient.range_of("307")
    eligibility_begin, eligibility_end = eligibility_begin or begin, eligibility_end or end

    return EligibilityResult(
        status=status,
        member_id=patient.member_id or (subscriber.member_id if subscriber else None),
        trace=_first(patient.traces) or (_first(subscriber.traces) if subscriber else None),
        payer_code=response.payer_code,
        is_dependent=patient.is_dependent,
        plan_name=plan_name or patient.plan_reference,
        group_number=patient.group_number or (subscriber.group_number if subscriber else None),
        insurance_type=insurance_type,
        plan_begin=plan_begin,
        plan_end=plan_end,
        eligibility_begin=eligibility_begin,
        eligibility_end=eligibility_end,
        benefits=benefits,
        aaa=aaa,
        pcp=primary_care_provider(benefits),
        other_payers=other_payers(benefits),
        payer_corrected_data=patient.corrected,
    )


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _plan(benefits: tuple[Benefit, ...], chosen: Benefit | None) -> tuple[str | None, str | None]:
    """Plan name and insurance type from the status EB, else from its siblings of like status."""
    if chosen is None:
        return None, None
    codes = ACTIVE_CODES if chosen.code in ACTIVE_CODES else INACTIVE_CODES
    siblings = [b for b in benefits if b.code in codes]
    plan_name = chosen.plan_name or next((b.plan_name for b in siblings if b.plan_name), None)
    insurance = chosen.insurance_type or next(
        (b.insurance_type for b in siblings if b.insurance_type), None
    )
    return plan_name, insurance


def _results(
    response: _Response, separators: Separators, service_type: str | None
) -> list[EligibilityResult]:
    with_data = [p for p in response.patients if p.benefits or p.aaa]
    if with_data:
        return [_result(response, p, separators, service_type) for p in with_data]
    # The payer said nothing per patient: one unverified answer for the deepest loop, if any.
    last = response.patients[-1] if response.patients else None
    return [_result(response, last, separators, service_type)]


def parse_271(data: bytes | str, *, service_type: str | None = None) -> list[EligibilityResult]:
    """Read every patient answer in a 271 interchange, in file order.

    Args:
        data: The raw interchange, bytes or text, as received.
        service_type: The STC the inquiry asked about; its EB is preferred (after it, STC 30)
            when choosing which status EB names the plan.

    Raises:
        X12Error: The input is not a readable 271; the message never contains element values.
    """
    try:
        separators, segments = tokenize(data)
        results: list[EligibilityResult] = []
        for transaction in transactions(segments, "271"):
            results.extend(_results(_read_response(transaction), separators, service_type))
        return results
    except X12Error:
        raise
    except _BOUNDARY_ERRORS as exc:
        raise X12Error(f"unreadable 271: {type(exc).__name__}") from exc


def results_to_json(results: list[EligibilityResult]) -> list[dict[str, Any]]:
    """JSON-ready dicts for a list of results (one call for the CLI)."""
    return [result.to_json() for result in results]


# --- 270 -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Inquirer:
    """One 270 patient loop as read so far."""

    person: dict[str, Any] = field(default_factory=dict)
    trace: str | None = None
    date_of_service: date | None = None
    service_type: str | None = None
    asks: bool = False  # has its own TRN or EQ, i.e. it is the patient being asked about

    def read(self, tag: str, segment: Segment, separators: Separators) -> None:
        if tag == "NM1" and "last_name" not in self.person:
            self.person.update(
                last_name=element(segment, 3),
                first_name=element(segment, 4),
                middle_name=optional(segment, 5),
                suffix=optional(segment, 7),
                member_id=optional(segment, 9),
            )
        elif tag == "DMG" and element(segment, 1) == "D8":
            self.person.update(
                date_of_birth=parse_date(element(segment, 2)), sex=optional(segment, 3)
            )
        elif tag == "REF" and element(segment, 1) == "6P":
            self.person.setdefault("group_number", optional(segment, 2))
        elif tag == "TRN" and element(segment, 1) == "1":
            self.asks = True
            self.trace = self.trace or optional(segment, 2)
        elif tag == "DTP" and element(segment, 1) == "291":
            period = parse_period(element(segment, 2), element(segment, 3))
            if period is not None and self.date_of_service is None:
                self.date_of_service = period[0]
        elif tag == "EQ":
            self.asks = True
            codes = element(segment, 1)
            first = codes.split(separators.repetition)[0] if separators.repetition else codes
            self.service_type = self.service_type or first.strip() or None

    def to_person(self) -> Person:
        return Person(**{"first_name": "", "last_name": "", **self.person})


def _read_inquiry(transaction: Transaction, separators: Separators) -> list[EligibilityRequest]:
    payer: dict[str, str] = {}
    provider: dict[str, str] = {}
    provider_person = False
    patients: list[tuple[_Inquirer, _Inquirer | None]] = []
    subscriber: _Inquirer | None = None
    current: _Inquirer | None = None
    level: str | None = None
    for _position, segment in transaction.segments:
        tag = segment[0].strip()
        if tag == "HL":
            level = element(segment, 3)
            current = None
            if level == _SUBSCRIBER_LEVEL:
                subscriber = current = _Inquirer()
                patients.append((current, None))
            elif level == _DEPENDENT_LEVEL and subscriber is not None:
                current = _Inquirer()
                patients.append((subscriber, current))
        elif current is not None:
            current.read(tag, segment, separators)
        elif tag == "NM1" and level == _PAYER_LEVEL and not payer:
            payer = {"id": element(segment, 9), "name": element(segment, 3)}
        elif tag == "NM1" and level == _PROVIDER_LEVEL and not provider:
            provider_person = element(segment, 2) == "1"
            provider = {"npi": element(segment, 9), "name": element(segment, 3)}
            provider["first"] = element(segment, 4) if provider_person else ""
    requests: list[EligibilityRequest] = []
    for sub, dependent in patients:
        patient = dependent or sub
        if not patient.asks:
            continue
        if not payer.get("id") or not provider.get("npi"):
            raise X12Error("270 without a payer code or provider identifier")
        trace = patient.trace or sub.trace
        if trace is None:
            raise X12Error("270 patient loop without a TRN trace")
        when = patient.date_of_service or sub.date_of_service or transaction.group_date
        if when is None:
            raise X12Error("270 patient loop without a date of service")
        requests.append(
            EligibilityRequest(
                trace=trace,
                payer_code=payer["id"],
                provider_npi=provider["npi"],
                provider_name=provider["name"],
                subscriber=sub.to_person(),
                date_of_service=when,
                service_type=patient.service_type or sub.service_type or "30",
                payer_name=payer.get("name", ""),
                provider_first_name=provider["first"] or None,
                dependent=dependent.to_person() if dependent else None,
            )
        )
    return requests


def parse_270(data: bytes | str) -> list[EligibilityRequest]:
    """Read the inquiries of a 270 (one per patient asked about); the payer simulator's input.

    Raises:
        X12Error: The input is not a readable 270.
    """
    try:
        separators, segments = tokenize(data)
        requests: list[EligibilityRequest] = []
        for transaction in transactions(segments, "270"):
            requests.extend(_read_inquiry(transaction, separators))
        return requests
    except X12Error:
        raise
    except _BOUNDARY_ERRORS as exc:
        raise X12Error(f"unreadable 270: {type(exc).__name__}") from exc
