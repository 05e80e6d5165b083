"""Appointment reminders: the policy (who, when, which channel), the outbox service, links."""

from __future__ import annotations

from office.reminders.policy import (
    DEFAULT_OFFSETS,
    Contact,
    Facts,
    Offset,
    OffsetError,
    Planned,
    Policy,
    Route,
    SendWindow,
    bring_insurance_card,
    due_now,
    notice_route,
    parse_offsets,
    plan_reminders,
    reachable,
    route,
    visit_label,
    zone_for,
)

__all__ = [
    "DEFAULT_OFFSETS",
    "Contact",
    "Facts",
    "Offset",
    "OffsetError",
    "Planned",
    "Policy",
    "Route",
    "SendWindow",
    "bring_insurance_card",
    "due_now",
    "notice_route",
    "parse_offsets",
    "plan_reminders",
    "reachable",
    "route",
    "visit_label",
    "zone_for",
]
