"""The normalized eligibility request and result every payer adapter speaks.

Adapters translate to and from these types at their boundary; nothing past the
adapter sees X12 segments or a clearinghouse's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

Network = Literal["in", "out", "both", "unknown"]


class CoverageStatus(StrEnum):
    """What the front desk needs to know first: can the visit be billed to this plan."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    UNVERIFIED = "unverified"


class AaaAction(StrEnum):
    """What to do about an AAA rejection."""

    RETRY_LATER = "retry_later"
    FIX_PATIENT_DATA = "fix_patient_data"
    FIX_PROVIDER_SETUP = "fix_provider_setup"
    HUMAN_REVIEW = "human_review"


@dataclass(frozen=True, slots=True)
class Person:
    """A subscriber or dependent as the payer knows them."""

    first_name: str
    last_name: str
    date_of_birth: date | None = None
    sex: str | None = None  # "M", "F" or "U"
    middle_name: str | None = None
    suffix: str | None = None
    member_id: str | None = None
    group_number: str | None = None


@dataclass(frozen=True, slots=True)
class EligibilityRequest:
    """One inquiry: one patient, one date of service, one service type code."""

    trace: str  # our TRN02; the 271 is correlated on it
    payer_code: str  # the payer's X12 identifier (2100A NM109), as the clearinghouse knows it
    provider_npi: str
    provider_name: str  # organization name, or last name when provider_first_name is set
    subscriber: Person
    date_of_service: date
    service_type: str = "30"
    payer_name: str = ""
    provider_first_name: str | None = None
    dependent: Person | None = None

    @property
    def member_id(self) -> str | None:
        return self.subscriber.member_id


@dataclass(frozen=True, slots=True)
class Aaa:
    """One AAA request validation segment, with the loop it came from."""

    loop: str  # "2000A", "2100A", "2100B", "2100C", "2110C", "2100D", "2110D"
    code: str  # AAA03 reject reason
    followup: str | None  # AAA04
    valid_request: bool  # AAA01 == "Y"
    action: AaaAction

    def to_json(self) -> dict[str, Any]:
        return {
            "loop": self.loop,
            "code": self.code,
            "followup": self.followup,
            "action": self.action.value,
        }


@dataclass(frozen=True, slots=True)
class Entity:
    """A related entity: a PCP, another payer, a contact (2120 loop or 2100A)."""

    role: str  # NM101: "P3" primary care provider, "PRP" primary payer, "PR" payer, ...
    name: str | None = None
    id_qualifier: str | None = None  # NM108
    identifier: str | None = None  # NM109


@dataclass(frozen=True, slots=True)
class Benefit:
    """One EB segment with what belongs to it."""

    code: str  # EB01
    coverage_level: str | None = None  # EB02
    service_types: tuple[str, ...] = ()  # EB03, split on the repetition separator
    insurance_type: str | None = None  # EB04
    plan_name: str | None = None  # EB05
    time_period: str | None = None  # EB06
    amount: Decimal | None = None  # EB07
    percent: Decimal | None = None  # EB08
    quantity_qualifier: str | None = None  # EB09
    quantity: Decimal | None = None  # EB10
    authorization_required: bool | None = None  # EB11: Y/N, U -> None
    network: Network = "unknown"  # EB12: Y in, N out, W both, else unknown
    procedure: str | None = None  # EB13, components joined with ":"
    messages: tuple[str, ...] = ()  # MSG01
    dates: dict[str, str] = field(default_factory=dict)  # DTP qualifier -> ISO date or range
    entities: tuple[Entity, ...] = ()  # 2120
    aaa: tuple[Aaa, ...] = ()  # 2110 AAA

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "coverage_level": self.coverage_level,
            "service_types": list(self.service_types),
            "insurance_type": self.insurance_type,
            "plan_name": self.plan_name,
            "network": self.network,
            "time_period": self.time_period,
            "amount": _decimal(self.amount),
            "percent": _decimal(self.percent),
            "quantity_qualifier": self.quantity_qualifier,
            "quantity": _decimal(self.quantity),
            "authorization_required": self.authorization_required,
            "procedure": self.procedure,
            "messages": list(self.messages),
            "dates": dict(self.dates),
            "entities": [_entity(e) for e in self.entities],
        }


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    """What one patient loop of a 271 (or one JSON answer) says."""

    status: CoverageStatus
    member_id: str | None = None
    trace: str | None = None  # our TRN02 echoed back, when present
    payer_code: str | None = None  # the 2100A NM109 the answer names
    is_dependent: bool = False
    plan_name: str | None = None
    group_number: str | None = None
    insurance_type: str | None = None
    plan_begin: date | None = None
    plan_end: date | None = None
    eligibility_begin: date | None = None
    eligibility_end: date | None = None
    benefits: tuple[Benefit, ...] = ()
    aaa: tuple[Aaa, ...] = ()
    pcp: Entity | None = None
    other_payers: tuple[Entity, ...] = ()
    payer_corrected_data: bool = False  # INS04 == "25"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "member_id": self.member_id,
            "trace": self.trace,
            "payer_code": self.payer_code,
            "is_dependent": self.is_dependent,
            "plan_name": self.plan_name,
            "group_number": self.group_number,
            "insurance_type": self.insurance_type,
            "plan_begin": _iso(self.plan_begin),
            "plan_end": _iso(self.plan_end),
            "eligibility_begin": _iso(self.eligibility_begin),
            "eligibility_end": _iso(self.eligibility_end),
            "payer_corrected_data": self.payer_corrected_data,
            "pcp": _entity(self.pcp) if self.pcp else None,
            "other_payers": [_entity(e) for e in self.other_payers],
            "benefits": [b.to_json() for b in self.benefits],
            "aaa": [a.to_json() for a in self.aaa],
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _entity(entity: Entity) -> dict[str, Any]:
    return {
        "role": entity.role,
        "name": entity.name,
        "id_qualifier": entity.id_qualifier,
        "identifier": entity.identifier,
    }
