"""Staff onboarding and offboarding checklists: role templates, business-day dates, owners,
dependencies, escalation, evidence and recurring training.

The entry points other parts call (the practice import, the CLI, the flows):

- `start(session, staff_id, ...)`: build a new staff member's checklist and queue its mail;
- `offboard(session, staff_id, last_day, ...)`: a departure's checklist, revoking exactly
  what their onboarding granted;
- `follow_up(...)`: the daily reminders, escalations, releases and renewals;
- `complete_item(...)` / `skip_item(...)`: an item done, with its evidence, audited once.

Each takes the caller's session and never commits.
"""

from __future__ import annotations

from office.onboarding.calendar import BusinessCalendar, load_calendar
from office.onboarding.complete import CompletionError, Evidence, complete_item, skip_item
from office.onboarding.followup import FollowupPlan, FollowupTally, follow_up
from office.onboarding.offboard import granted_access, offboard
from office.onboarding.start import Built, OnboardingError, start_onboarding
from office.onboarding.templates import Template, TemplateError, load_templates

start = start_onboarding

__all__ = [
    "Built",
    "BusinessCalendar",
    "CompletionError",
    "Evidence",
    "FollowupPlan",
    "FollowupTally",
    "OnboardingError",
    "Template",
    "TemplateError",
    "complete_item",
    "follow_up",
    "granted_access",
    "load_calendar",
    "load_templates",
    "offboard",
    "skip_item",
    "start",
    "start_onboarding",
]
