"""Stedi's legacy JSON eligibility endpoint (v3), pinned to that one shape.

Stedi reports AAA rejections in ``errors[]`` and in ``{payer,provider,subscriber,
dependents[]}.aaaErrors``, under HTTP 400 per its spec but sometimes under 200, so both
the status and the body are read before deciding what an answer means.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from integrations.payers.base import (
    answer_limit,
    error_for_status,
    parse_retry_after,
    post_capped,
    raise_for_payer_aaa,
    read_answer,
    secret_setting,
    setting,
)
from office.contracts.payers import (
    PayerConfigError,
    PayerRejected,
    PayerResponse,
    PayerResponseInvalid,
)
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

__all__ = ["STEDI_BASE_URL", "STEDI_ELIGIBILITY_PATH", "StediPayer", "control_number"]

logger = logging.getLogger(__name__)

STEDI_BASE_URL = "https://healthcare.us.stedi.com"
STEDI_ELIGIBILITY_PATH = "/2024-04-01/change/medicalnetwork/eligibility/v3"

# Stedi spells AAA04 out; the office's rules key on the X12 letters.
_FOLLOWUPS = {
    "please correct and resubmit": "C",
    "resubmission not allowed": "N",
    "please resubmit original transaction": "P",
    "resubmission allowed": "R",
    "do not resubmit; inquiry initiated to a third party": "S",
    "please wait 30 days and resubmit": "W",
    "please wait 10 days and resubmit": "X",
    "do not resubmit; we will hold your request and respond again shortly": "Y",
}
# Where an aaaErrors list sits says which loop it came from when `location` does not.
_CONTAINER_LOOPS = {"payer": "2100A", "provider": "2100B", "subscriber": "2100C"}
_LOOP = re.compile(r"(2000|2100|2110)([A-D])")
_AAA_CODE = re.compile(r"^[0-9A-Z]{2}$")
# Stedi names NM101 roles in words; these are the ones the office reads.
_ROLES = {
    "primary care provider": "P3",
    "payer": "PR",
    "primary payer": "PRP",
    "secondary payer": "SEP",
    "tertiary payer": "TTP",
    "provider": "1P",
    "facility": "FA",
    "third-party administrator": "TV",
    "insured or subscriber": "IL",
    "plan sponsor": "P5",
    "employer": "36",
}
# benefitsDateInformation keys and the DTP qualifiers they stand for.
_BENEFIT_DATES = {
    "plan": "291",
    "planBegin": "346",
    "planEnd": "347",
    "eligibility": "307",
    "eligibilityBegin": "356",
    "eligibilityEnd": "357",
    "benefit": "292",
    "benefitBegin": "348",
    "benefitEnd": "349",
    "coordinationOfBenefits": "290",
    "periodStart": "193",
    "periodEnd": "194",
    "admission": "435",
    "service": "472",
    "dateOfLastUpdate": "636",
    "latestVisitOrConsultation": "304",
}
_NETWORK: dict[str, Network] = {"Y": "in", "N": "out", "W": "both"}
_AUTHORIZATION = {"Y": True, "N": False}
_RETRY_CODES = frozenset({"42", "80"})


def control_number(trace: str) -> str:
    """Nine digits derived from our trace, so the answer's controlNumber correlates."""
    digest = hashlib.sha256(trace.encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 999_999_999 + 1:09d}"


def _d8(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


class StediPayer:
    """Checks eligibility through Stedi's JSON API (``POST .../eligibility/v3``).

    Settings (``config``):
        api_key: Sent as the ``Authorization`` header value (required).
        base_url: ``https://healthcare.us.stedi.com`` unless pointed at a test double.
        max_answer_bytes: The largest answer read (`base.MAX_ANSWER_BYTES` by default).
    """

    name: ClassVar[str] = "stedi"

    def __init__(self, config: Mapping[str, Any], client: httpx.AsyncClient) -> None:
        self._client = client
        self._api_key = secret_setting(config, self.name, "api_key")
        base_url = setting(config, self.name, "base_url", str, STEDI_BASE_URL)
        if not base_url.startswith(("http://", "https://")):
            raise PayerConfigError("payer adapter 'stedi': setting 'base_url' must be http(s)")
        self._url = base_url.rstrip("/") + STEDI_ELIGIBILITY_PATH
        self._limit = answer_limit(config, self.name)

    def request_body(self, request: EligibilityRequest) -> dict[str, Any]:
        """The v3 JSON for one inquiry (eligibility brief §2)."""
        if request.provider_first_name:
            provider = {"firstName": request.provider_first_name, "lastName": request.provider_name}
        else:
            provider = {"organizationName": request.provider_name}
        body: dict[str, Any] = {
            "controlNumber": control_number(request.trace),
            "tradingPartnerServiceId": request.payer_code,
            "provider": {**provider, "npi": request.provider_npi},
            "subscriber": _person(request.subscriber, with_member_id=True),
            "encounter": {
                "serviceTypeCodes": [request.service_type],
                "dateOfService": _d8(request.date_of_service),
            },
        }
        if request.dependent is not None:
            body["dependents"] = [_person(request.dependent, with_member_id=False)]
        return body

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        """POST one inquiry and read Stedi's answer into the normalized result."""
        body = self.request_body(request)
        headers = {"Authorization": self._api_key, "Accept": "application/json"}
        response, answer = await post_capped(
            self._client, self._url, limit=self._limit, json=body, headers=headers
        )
        logger.debug("stedi answered HTTP %s", response.status_code)
        return await read_answer(
            len(answer), _read, request, response, answer, body["controlNumber"]
        )


def _person(person: Person, *, with_member_id: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"firstName": person.first_name, "lastName": person.last_name}
    if with_member_id and person.member_id:
        out["memberId"] = person.member_id
    if person.date_of_birth is not None:
        out["dateOfBirth"] = _d8(person.date_of_birth)
    return out


def _read(
    request: EligibilityRequest, response: httpx.Response, body: bytes, sent_control: str
) -> PayerResponse:
    status = response.status_code
    raw = body.decode("utf-8", errors="replace")
    failure = error_for_status(response, raw)
    if failure is not None and not isinstance(failure, PayerRejected):
        raise failure
    document = _document(raw)
    if document is None:
        if failure is not None:
            raise failure
        raise PayerResponseInvalid("answer is not a JSON object", raw=raw, status_code=status)
    try:
        aaa, other_errors = _errors(document)
    except (TypeError, ValueError, AttributeError) as exc:
        raise PayerResponseInvalid(
            f"unreadable errors in answer ({type(exc).__name__})", raw=raw, status_code=status
        ) from exc
    if failure is not None and not aaa:
        raise failure
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        result = _result(request, document, aaa, sent_control)
    except (TypeError, ValueError, AttributeError, ArithmeticError, LookupError) as exc:
        raise PayerResponseInvalid(
            f"unreadable answer ({type(exc).__name__})", raw=raw, status_code=status
        ) from exc
    raise_for_payer_aaa(result, raw, retry_after=retry_after, status_code=status)
    if other_errors and not aaa and not result.benefits:
        raise PayerRejected(
            f"clearinghouse reported {other_errors} error(s) and no benefits", status_code=status
        )
    return PayerResponse(result=result, raw=raw, raw_format="json")


def _document(raw: str) -> dict[str, Any] | None:
    try:
        # A JSON number with a fraction or an exponent stays the text the payer wrote, so
        # `read_amount` judges it as it judges X12's (1e400 would be inf, -1e-400 -0.0).
        document = json.loads(raw, parse_float=str)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _decimal(value: Any) -> Decimal | None:
    """An amount, percent or quantity, read as X12's are (`read_amount`: plain and bounded)."""
    text = _str(value)
    return None if text is None else read_amount(text)


def _errors(document: dict[str, Any]) -> tuple[tuple[Aaa, ...], int]:
    """Every AAA in the answer, deduplicated, and how many non-AAA errors came with them."""
    found: list[Aaa] = []
    seen: set[tuple[str, str, str | None]] = set()
    other = 0

    def take(entry: dict[str, Any], default_loop: str) -> None:
        nonlocal other
        code = (_str(entry.get("code")) or "").upper()
        if not _AAA_CODE.match(code) and entry.get("field") != "AAA":
            other += 1
            return
        location = _LOOP.search(_str(entry.get("location")) or "")
        loop = location.group(0) if location else default_loop
        followup_text = (_str(entry.get("followupAction")) or "").lower()
        followup = _FOLLOWUPS.get(followup_text)
        key = (loop, code, followup)
        if key in seen:
            return
        seen.add(key)
        found.append(
            Aaa(
                loop=loop,
                code=code,
                followup=followup,
                # JSON drops AAA01; like a payer, call only "try later" a valid request.
                valid_request=code in _RETRY_CODES,
                action=classify_aaa(loop, code),
            )
        )

    # Top-level errors without a location are read as the payer's: the safe reading of
    # a bare 42 is "try later", and payer-level setup codes stay setup codes.
    for entry in _items(document.get("errors")):
        take(entry, "2100A")
    for container, loop in _CONTAINER_LOOPS.items():
        for entry in _items(_obj(document.get(container)).get("aaaErrors")):
            take(entry, loop)
    for dependent in _items(document.get("dependents")):
        for entry in _items(dependent.get("aaaErrors")):
            take(entry, "2100D")
    return tuple(found), other


def _period(value: Any) -> tuple[date, date] | None:
    """ "20240101" or "20240101-20241231" as (begin, end); None when unreadable."""
    text = _str(value)
    if text is None:
        return None
    first, _, last = text.partition("-")
    try:
        begin = _date(first)
        end = _date(last) if last else begin
    except ValueError:
        return None
    return begin, end


def _date(text: str) -> date:
    text = text.strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError("not CCYYMMDD")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _entity(entry: dict[str, Any]) -> Entity:
    identifier = _str(entry.get("entityIdentifier")) or ""
    last, first = _str(entry.get("entityName")), _str(entry.get("entityFirstname"))
    name = f"{last}, {first}" if last and first else last or first
    return Entity(
        role=_ROLES.get(identifier.lower(), identifier),
        name=name,
        id_qualifier=_str(entry.get("entityIdentification")),
        identifier=_str(entry.get("entityIdentificationValue")),
    )


def _descriptions(value: Any) -> list[Any]:
    """MSG texts: ``additionalInformation[].description``."""
    return [item.get("description") for item in _items(value)]


def _benefit(entry: dict[str, Any]) -> Benefit:
    dates: dict[str, str] = {}
    for key, value in _obj(entry.get("benefitsDateInformation")).items():
        qualifier, period = _BENEFIT_DATES.get(key), _period(value)
        if qualifier and period:
            begin, end = period
            dates[qualifier] = f"{begin}/{end}" if begin != end else begin.isoformat()
    related = _items(entry.get("benefitsRelatedEntities"))
    single = _obj(entry.get("benefitsRelatedEntity"))
    if single and single not in related:
        related.append(single)
    procedure = _obj(entry.get("compositeMedicalProcedureIdentifier"))
    procedure_parts = [
        _str(procedure.get("productOrServiceIdQualifierCode")),
        _str(procedure.get("procedureCode")),
    ]
    service_types = entry.get("serviceTypeCodes")
    return Benefit(
        code=_str(entry.get("code")) or "",
        coverage_level=_str(entry.get("coverageLevelCode")),
        service_types=tuple(
            code
            for code in map(_str, service_types if isinstance(service_types, list) else [])
            if code
        ),
        insurance_type=_str(entry.get("insuranceTypeCode")),
        plan_name=_str(entry.get("planCoverage")),
        time_period=_str(entry.get("timeQualifierCode")),
        amount=_decimal(entry.get("benefitAmount")),
        percent=_decimal(entry.get("benefitPercent")),
        quantity_qualifier=_str(entry.get("quantityQualifierCode")),
        quantity=_decimal(entry.get("benefitQuantity")),
        authorization_required=_AUTHORIZATION.get(_str(entry.get("authOrCertIndicator")) or ""),
        network=_NETWORK.get(_str(entry.get("inPlanNetworkIndicatorCode")) or "", "unknown"),
        procedure=":".join(p for p in procedure_parts if p) if procedure_parts[1] else None,
        messages=tuple(
            text for text in map(_str, _descriptions(entry.get("additionalInformation"))) if text
        ),
        dates=dates,
        entities=tuple(_entity(item) for item in related),
    )


def _status_benefit(
    benefits: tuple[Benefit, ...], codes: frozenset[str], preferred: list[str]
) -> Benefit | None:
    candidates = [b for b in benefits if b.code in codes]
    for stc in preferred:
        for benefit in candidates:
            if stc in benefit.service_types:
                return benefit
    return candidates[0] if candidates else None


def _plan_status(document: dict[str, Any], preferred: list[str]) -> dict[str, Any] | None:
    statuses = _items(document.get("planStatus"))
    for stc in preferred:
        for status in statuses:
            codes = status.get("serviceTypeCodes")
            if isinstance(codes, list) and stc in codes:
                return status
    return statuses[0] if statuses else None


def _result(
    request: EligibilityRequest,
    document: dict[str, Any],
    aaa: tuple[Aaa, ...],
    sent_control: str,
) -> EligibilityResult:
    benefits = tuple(_benefit(entry) for entry in _items(document.get("benefitsInformation")))
    preferred = [request.service_type, "30"]
    active = _status_benefit(benefits, ACTIVE_CODES, preferred)
    inactive = _status_benefit(benefits, INACTIVE_CODES, preferred)
    plan_status = _plan_status(document, preferred)
    status_code = _str((plan_status or {}).get("statusCode"))
    if aaa:
        status = CoverageStatus.UNVERIFIED
    elif active is not None or (inactive is None and status_code in ACTIVE_CODES):
        status = CoverageStatus.ACTIVE
    elif inactive is not None or status_code in INACTIVE_CODES:
        status = CoverageStatus.INACTIVE
    else:
        status = CoverageStatus.UNVERIFIED
    chosen = active or inactive

    subscriber = _obj(document.get("subscriber"))
    dependents = _items(document.get("dependents"))
    dependent = dependents[0] if request.dependent is not None and dependents else None
    patient = dependent or subscriber
    plan_information = _obj(document.get("planInformation"))
    dates = _obj(document.get("planDateInformation"))
    plan_begin, plan_end = _begin_end(dates, "planBegin", "planEnd", "plan")
    eligibility_begin, eligibility_end = _begin_end(
        dates, "eligibilityBegin", "eligibilityEnd", "eligibility"
    )
    payer = _obj(document.get("payer"))
    echoed = _str(document.get("controlNumber"))
    return EligibilityResult(
        status=status,
        member_id=_str(patient.get("memberId")) or _str(subscriber.get("memberId")),
        # Stedi writes its own TRN; the controlNumber we sent is what correlates.
        trace=request.trace if echoed == sent_control else None,
        payer_code=_str(payer.get("payorIdentification"))
        or _str(document.get("tradingPartnerServiceId")),
        is_dependent=dependent is not None,
        plan_name=(chosen.plan_name if chosen else None)
        or _str((plan_status or {}).get("planDetails"))
        or _str(plan_information.get("planDescription")),
        group_number=_str(plan_information.get("groupNumber"))
        or _str(patient.get("groupNumber"))
        or _str(subscriber.get("groupNumber")),
        insurance_type=chosen.insurance_type if chosen else None,
        plan_begin=plan_begin,
        plan_end=plan_end,
        eligibility_begin=eligibility_begin,
        eligibility_end=eligibility_end,
        benefits=benefits,
        aaa=aaa,
        pcp=primary_care_provider(benefits),
        other_payers=other_payers(benefits),
        payer_corrected_data=_str(patient.get("maintenanceReasonCode")) == "25",
    )


def _begin_end(
    dates: dict[str, Any], begin_key: str, end_key: str, range_key: str
) -> tuple[date | None, date | None]:
    begin_period, end_period = _period(dates.get(begin_key)), _period(dates.get(end_key))
    both = _period(dates.get(range_key))
    begin = begin_period[0] if begin_period else (both[0] if both else None)
    end = end_period[1] if end_period else (both[1] if both else None)
    return begin, end
