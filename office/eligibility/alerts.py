"""Turn one normalized eligibility answer into the alerts the office must act on.

The table is the domain brief's §7. Rules are plain functions of the result and a context
(the visit, what is on file, today); they never see names, dates of birth or member ids, so
every summary and detail they write is safe to show on the work queue: ids, dates of
service, codes and amounts only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from office.eligibility.codes import ACTIVE_CODES
from office.eligibility.types import (
    AaaAction,
    Benefit,
    CoverageStatus,
    EligibilityResult,
)

__all__ = [
    "ROLES",
    "Alert",
    "AlertContext",
    "AlertKind",
    "alerts_for",
    "deductible_remaining",
    "failure_alert",
    "registration_alert",
    "visit_copay",
]


class AlertKind(StrEnum):
    """The work-item kinds eligibility raises; the strings are the work queue's `kind`."""

    NOT_ACTIVE = "not_active"
    PLAN_ENDING = "plan_ending"
    FIX_PATIENT_DATA = "fix_patient_data"
    PROVIDER_SETUP = "provider_setup"
    UNVERIFIED = "unverified"
    AUTHORIZATION_REQUIRED = "authorization_required"
    REFERRAL_NEEDED = "referral_needed"
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    PAYER_CORRECTED_DATA = "payer_corrected_data"
    COPAY_CHANGED = "copay_changed"
    HIGH_DEDUCTIBLE = "high_deductible"
    AMBIGUOUS_MATCH = "ambiguous_match"
    SERVICE_NOT_COVERED = "service_not_covered"


FRONT_DESK: Final = "front_desk"
BILLING: Final = "billing"

# Billing owns what depends on contracts and enrollment; the front desk what it fixes with
# the patient at the counter.
ROLES: Final[dict[AlertKind, str]] = {
    AlertKind.NOT_ACTIVE: FRONT_DESK,
    AlertKind.PLAN_ENDING: FRONT_DESK,
    AlertKind.FIX_PATIENT_DATA: FRONT_DESK,
    AlertKind.PROVIDER_SETUP: BILLING,
    AlertKind.UNVERIFIED: FRONT_DESK,
    AlertKind.AUTHORIZATION_REQUIRED: FRONT_DESK,
    AlertKind.REFERRAL_NEEDED: FRONT_DESK,
    AlertKind.COORDINATION_OF_BENEFITS: BILLING,
    AlertKind.PAYER_CORRECTED_DATA: FRONT_DESK,
    AlertKind.COPAY_CHANGED: FRONT_DESK,
    AlertKind.HIGH_DEDUCTIBLE: BILLING,
    AlertKind.AMBIGUOUS_MATCH: FRONT_DESK,
    AlertKind.SERVICE_NOT_COVERED: FRONT_DESK,
}

# AAA 76 (2100C) and its 2100D twin 68: the payer holds more than one member for what we sent.
_DUPLICATE_MEMBER: Final = frozenset({"76", "68"})
_HMO: Final = frozenset({"HM", "HN"})
# EB04 codes that say Medicare pays second: another payer is primary.
_MEDICARE_SECONDARY: Final = frozenset({"12", "13", "14", "15", "16", "41", "42", "43", "47"})
_AUTH_MESSAGE: Final = re.compile(
    r"PRE-?CERT|PRE-?AUTH|PRIOR\s+AUTH|AUTHORI[ZS]ATION\s+(IS\s+)?REQUIRED", re.IGNORECASE
)
# Where a visit's copay is listed when the payer does not answer for its exact service type:
# a general or sick/well office visit bills as STC 98, behavioral health under its siblings.
_COPAY_FALLBACK: Final[dict[str, tuple[str, ...]]] = {
    "1": ("98",),
    "30": ("98",),
    "BY": ("98",),
    "BZ": ("98",),
    "MH": ("CF", "A6", "A8"),
    "A6": ("MH", "CF"),
    "A8": ("MH", "CF"),
    "CF": ("MH", "A6"),
    "PT": ("AE",),
}
_NETWORK_PREFERENCE: Final = {"in": 0, "both": 1, "unknown": 2}


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What the rules need beyond the payer's answer.

    Args:
        date_of_service: The visit's date (the monthly refresh uses today).
        service_type: The visit's service type code (STC) the inquiry asked about.
        today: The practice's local date, for "plan ends soon".
        appointment_id: The visit the check was for; None for a monthly refresh.
        patient_id: Names the subject when there is no appointment.
        rendering_npi: The provider seeing the patient, for HMO referrals.
        copay_on_file: The copay registration recorded for this coverage.
        previous_copay: The visit copay the last answered check for this coverage found.
        deductible_threshold: Remaining deductible above which billing is told.
        retries_exhausted: The payer was asked again and again and never answered.
        plan_ending_days: How far ahead a plan end counts as "soon".
    """

    date_of_service: date
    service_type: str
    today: date
    appointment_id: int | None = None
    patient_id: int | None = None
    rendering_npi: str | None = None
    copay_on_file: Decimal | None = None
    previous_copay: Decimal | None = None
    deductible_threshold: Decimal = Decimal(500)
    retries_exhausted: bool = False
    plan_ending_days: int = 30

    @property
    def subject(self) -> str:
        """How a summary names what it is about: ids and the date only."""
        day = self.date_of_service.isoformat()
        if self.appointment_id is not None:
            return f"Appointment {self.appointment_id} on {day}"
        if self.patient_id is not None:
            return f"Patient {self.patient_id}, coverage check for {day}"
        return f"Coverage check for {day}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing a person must do; becomes one work item per appointment and kind."""

    kind: AlertKind
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)  # codes, ids, dates, amounts
    problem: str = ""  # the summary without its subject: the queue names the visit itself

    @property
    def role(self) -> str:
        return ROLES[self.kind]


def alerts_for(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    """Every alert one answer raises, in the order of the domain brief's table."""
    alerts: list[Alert] = []
    if result.status is CoverageStatus.UNVERIFIED:
        alerts += _rejections(result, context)
    elif result.status is CoverageStatus.INACTIVE:
        text = "coverage not active on the date of service"
        alerts.append(_alert(AlertKind.NOT_ACTIVE, context, text, {"status": "inactive"}))
    else:
        alerts += _active(result, context)
    if result.payer_corrected_data:
        alerts.append(
            _alert(
                AlertKind.PAYER_CORRECTED_DATA,
                context,
                "the payer corrected the patient's identifying data; update registration",
                {"ins04": "25"},
            )
        )
    alerts += _coordination(result, context)
    return alerts


def failure_alert(context: AlertContext, reason: str) -> Alert:
    """The alert for a check that got no usable answer at all (outage, unreadable reply).

    Args:
        context: The visit.
        reason: A short code, e.g. "payer_unavailable" or "payer_response_invalid".
    """
    if context.retries_exhausted:
        text = "payer did not answer after retries; verify eligibility by phone or portal"
    else:
        text = "eligibility could not be verified; verify by phone or portal"
    return _alert(AlertKind.UNVERIFIED, context, text, {"reason": reason})


def registration_alert(context: AlertContext, reason: str) -> Alert:
    """The alert for a coverage whose record is too incomplete to ask the payer at all."""
    text = "coverage record is incomplete (subscriber name missing); complete registration"
    return _alert(AlertKind.FIX_PATIENT_DATA, context, text, {"reason": reason})


# --- the rules ---------------------------------------------------------------------------


def _alert(kind: AlertKind, context: AlertContext, text: str, detail: dict[str, Any]) -> Alert:
    return Alert(kind=kind, summary=f"{context.subject}: {text}", detail=detail, problem=text)


def _codes(items: Iterable[tuple[str, str, str | None]]) -> list[dict[str, str | None]]:
    return [{"loop": loop, "code": code, "followup": followup} for loop, code, followup in items]


def _rejections(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    """An unverified answer: say what to fix, else that it stays unverified."""
    aaa = [(a.loop, a.code, a.followup, a.action) for a in result.aaa]
    if any(action is AaaAction.RETRY_LATER for *_, action in aaa):
        # An outage makes every other rejection in the answer moot until the payer is back.
        codes = _codes((loop, code, f) for loop, code, f, a in aaa if a is AaaAction.RETRY_LATER)
        return [_unverified(context, "payer_unavailable", codes)]
    alerts = []
    duplicate = [(loop, code, f) for loop, code, f, _a in aaa if code in _DUPLICATE_MEMBER]
    patient = [
        (loop, code, f)
        for loop, code, f, action in aaa
        if action is AaaAction.FIX_PATIENT_DATA and code not in _DUPLICATE_MEMBER
    ]
    setup = [(loop, code, f) for loop, code, f, a in aaa if a is AaaAction.FIX_PROVIDER_SETUP]
    if patient:
        text = "the payer could not match the patient; check member id, name and date of birth"
        alerts.append(_alert(AlertKind.FIX_PATIENT_DATA, context, text, {"aaa": _codes(patient)}))
    if setup:
        text = "the payer rejected the provider or payer setup (NPI, enrollment, payer id)"
        alerts.append(_alert(AlertKind.PROVIDER_SETUP, context, text, {"aaa": _codes(setup)}))
    if duplicate:
        text = "the payer found more than one member for the details sent; confirm from the card"
        alerts.append(_alert(AlertKind.AMBIGUOUS_MATCH, context, text, {"aaa": _codes(duplicate)}))
    if not alerts:
        others = _codes((loop, code, f) for loop, code, f, _a in aaa)
        alerts.append(_unverified(context, "payer_review" if others else "no_status", others))
    return alerts


def _unverified(context: AlertContext, reason: str, codes: list[dict[str, str | None]]) -> Alert:
    alert = failure_alert(context, reason)
    if codes:
        alert.detail["aaa"] = codes
    return alert


def _active(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    dos = context.date_of_service
    begin = _latest(result.plan_begin, result.eligibility_begin)
    end = _earliest(result.plan_end, result.eligibility_end)
    if (begin is not None and begin > dos) or (end is not None and end < dos):
        window = {"begin": _iso(begin), "end": _iso(end)}
        text = "coverage not active on the date of service (outside the plan dates)"
        return [_alert(AlertKind.NOT_ACTIVE, context, text, window)]
    alerts = []
    if end is not None and end <= context.today + timedelta(days=context.plan_ending_days):
        text = f"plan ends on {end.isoformat()}, within {context.plan_ending_days} days"
        alerts.append(_alert(AlertKind.PLAN_ENDING, context, text, {"end": end.isoformat()}))
    alerts += _service_rules(result, context)
    alerts += _money(result, context)
    return alerts


def _service_rules(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    stc = context.service_type
    visit = [b for b in result.benefits if stc in b.service_types]
    alerts = []
    if any(_needs_authorization(b) for b in visit if b.code != "I"):
        text = f"prior authorization required for service type {stc}"
        alerts.append(
            _alert(AlertKind.AUTHORIZATION_REQUIRED, context, text, {"service_type": stc})
        )
    insurance = result.insurance_type or next(
        (b.insurance_type for b in result.benefits if b.code in ACTIVE_CODES and b.insurance_type),
        None,
    )
    pcp = result.pcp.identifier if result.pcp else None
    if insurance in _HMO and pcp and context.rendering_npi and pcp != context.rendering_npi:
        text = "HMO plan with another primary care provider; a referral is needed"
        alerts.append(
            _alert(AlertKind.REFERRAL_NEEDED, context, text, {"insurance_type": insurance})
        )
    if any(b.code == "I" for b in visit):
        text = f"service type {stc} is not covered by the plan"
        alerts.append(_alert(AlertKind.SERVICE_NOT_COVERED, context, text, {"service_type": stc}))
    elif any(_visits_used_up(b) for b in visit):
        text = f"no visits left for service type {stc}"
        detail = {"service_type": stc, "visits_remaining": "0"}
        alerts.append(_alert(AlertKind.SERVICE_NOT_COVERED, context, text, detail))
    return alerts


def _needs_authorization(benefit: Benefit) -> bool:
    return benefit.authorization_required is True or any(
        _AUTH_MESSAGE.search(text) for text in benefit.messages
    )


def _visits_used_up(benefit: Benefit) -> bool:
    return (
        benefit.code == "F"
        and benefit.quantity_qualifier == "VS"
        and benefit.time_period == "29"
        and benefit.quantity == 0
    )


def _money(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    alerts = []
    copay = visit_copay(result, context.service_type)
    before = context.previous_copay if context.previous_copay is not None else context.copay_on_file
    if copay is not None and before is not None and copay != before:
        text = f"visit copay changed from {_money_text(before)} to {_money_text(copay)}"
        detail = {"copay": _plain(copay), "before": _plain(before)}
        alerts.append(_alert(AlertKind.COPAY_CHANGED, context, text, detail))
    remaining = deductible_remaining(result)
    if remaining is not None and remaining > context.deductible_threshold:
        text = f"deductible remaining {_money_text(remaining)} is above the alert threshold"
        detail = {"remaining": _plain(remaining), "threshold": _plain(context.deductible_threshold)}
        alerts.append(_alert(AlertKind.HIGH_DEDUCTIBLE, context, text, detail))
    return alerts


def _coordination(result: EligibilityResult, context: AlertContext) -> list[Alert]:
    other = any(b.code == "R" for b in result.benefits) or bool(result.other_payers)
    secondary = result.insurance_type in _MEDICARE_SECONDARY or any(
        b.insurance_type in _MEDICARE_SECONDARY for b in result.benefits
    )
    if not (other or secondary):
        return []
    text = "the payer reports another payer; confirm the order of benefits"
    detail = {"other_payers": len(result.other_payers), "medicare_secondary": secondary}
    return [_alert(AlertKind.COORDINATION_OF_BENEFITS, context, text, detail)]


# --- figures the check row keeps ----------------------------------------------------------


def visit_copay(result: EligibilityResult, service_type: str) -> Decimal | None:
    """The in-network copay for the visit's service type (or where payers list it instead)."""
    wanted = (service_type, *_COPAY_FALLBACK.get(service_type, ()))
    candidates = [
        b for b in result.benefits if b.code == "B" and b.amount is not None and b.network != "out"
    ]
    for stc in wanted:
        matching = [b for b in candidates if stc in b.service_types]
        if matching:
            best = min(matching, key=lambda b: (b.time_period not in ("27", None), _rank(b)))
            return best.amount
    return None


def deductible_remaining(result: EligibilityResult) -> Decimal | None:
    """The individual in-network deductible still to meet (EB*C, EB06=29)."""
    candidates = [
        b
        for b in result.benefits
        if b.code == "C"
        and b.time_period == "29"
        and b.amount is not None
        and b.network != "out"
        and b.coverage_level in ("IND", None)
        and (not b.service_types or "30" in b.service_types)
    ]
    if not candidates:
        return None
    return min(candidates, key=_rank).amount


def _rank(benefit: Benefit) -> int:
    return _NETWORK_PREFERENCE.get(benefit.network, 3)


def _latest(*days: date | None) -> date | None:
    known = [d for d in days if d is not None]
    return max(known) if known else None


def _earliest(*days: date | None) -> date | None:
    known = [d for d in days if d is not None]
    return min(known) if known else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _plain(amount: Decimal) -> str:
    return format(amount, "f")


def _money_text(amount: Decimal) -> str:
    return f"${amount:,.2f}"
