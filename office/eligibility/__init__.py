"""Insurance eligibility in the domain: the normalized types, the code tables and the alert rules.

`office.eligibility.service` (selection, recording, asking payers) is imported by name: it
reaches into `integrations.payers`, which itself imports the types from here.
"""

from __future__ import annotations

from office.eligibility.alerts import (
    ROLES,
    Alert,
    AlertContext,
    AlertKind,
    alerts_for,
    deductible_remaining,
    failure_alert,
    registration_alert,
    visit_copay,
)
from office.eligibility.types import (
    Aaa,
    AaaAction,
    Benefit,
    CoverageStatus,
    EligibilityRequest,
    EligibilityResult,
    Entity,
    Person,
)

__all__ = [
    "ROLES",
    "Aaa",
    "AaaAction",
    "Alert",
    "AlertContext",
    "AlertKind",
    "Benefit",
    "CoverageStatus",
    "EligibilityRequest",
    "EligibilityResult",
    "Entity",
    "Person",
    "alerts_for",
    "deductible_remaining",
    "failure_alert",
    "registration_alert",
    "visit_copay",
]
