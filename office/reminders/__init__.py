"""Appointment reminders: who is told what, when and how; recorded once, sent once.

The package, by job:

- `policy`: which reminder goes to whom, when, on which channel (plain functions);
- `visits`: appointments read in bulk as plain `Visit` rows;
- `rows`: the reminder rows in the shared outbox (kinds, key, fields);
- `enqueue`: recording the reminders that are due; `notices`: confirmations,
  reschedule and cancellation notices, and withdrawing what went stale;
- `compose`: one row's email or text; `prebuild`: building a batch's emails ahead;
- `judge`: whether a queued row is still right to send; `send`: the send loop;
  `outcomes`: its writes; `channels`: the transports it sends through;
- `recovery`: settling sends a killed run left in doubt;
- `preview`: what the next hours would send; `tally`: counts per outcome;
- `work`: the work items a person must act on; `links`: the patient's answer links.
"""

from __future__ import annotations

from office.reminders.channels import Channels, Transports
from office.reminders.compose import Draft, compose_email, compose_sms, email_parts
from office.reminders.enqueue import enqueue_due
from office.reminders.notices import enqueue_notices, withdraw_pending
from office.reminders.policy import (
    DEFAULT_OFFSETS,
    DEFAULT_POLICY,
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
from office.reminders.preview import PreviewLine, mask_address, preview
from office.reminders.recovery import DEFAULT_LEASE, reconcile_interrupted
from office.reminders.rows import KINDS, outbox_key
from office.reminders.send import (
    RETRY_DELAYS,
    Batch,
    DeliveryDeferred,
    due_outbox_ids,
    send_batch,
)
from office.reminders.tally import Tally
from office.reminders.visits import Visit, load_visits

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_OFFSETS",
    "DEFAULT_POLICY",
    "KINDS",
    "RETRY_DELAYS",
    "Batch",
    "Channels",
    "Contact",
    "DeliveryDeferred",
    "Draft",
    "Facts",
    "Offset",
    "OffsetError",
    "Planned",
    "Policy",
    "PreviewLine",
    "Route",
    "SendWindow",
    "Tally",
    "Transports",
    "Visit",
    "bring_insurance_card",
    "compose_email",
    "compose_sms",
    "due_now",
    "due_outbox_ids",
    "email_parts",
    "enqueue_due",
    "enqueue_notices",
    "load_visits",
    "mask_address",
    "notice_route",
    "outbox_key",
    "parse_offsets",
    "plan_reminders",
    "preview",
    "reachable",
    "reconcile_interrupted",
    "route",
    "send_batch",
    "visit_label",
    "withdraw_pending",
    "zone_for",
]
