"""Insurance eligibility in the domain: what to check, asking payers, storing what they say.

A package of modules, one job each:

- `select_due`: which visits (or patients, for the monthly refresh) need a check;
- `record`: a pending check row per inquiry, written before anything is sent;
- `inquiry`: those rows read back as `EligibilityRequest`s, the one place requests are built;
- `ask_payers`: one payer's batch, under its limits, with quick retries (`run_batch`);
- `store`: answers and the work items they raise, written as they arrive;
- `summary`: a run's counts, read back from the database;
- `types`, `codes`, `alerts`: the normalized request and result, the code tables, the rules.

Services receive what they need from outside: the payer adapters come through an
`office.contracts.payers.PayerDirectory` in the batch's `BatchConfig`.
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
from office.eligibility.ask_payers import (
    BatchConfig,
    BatchOutcome,
    ChecksStillPending,
    RetryPolicy,
    TokenBucket,
    run_batch,
)
from office.eligibility.inquiry import Inquiries, Inquiry, MissingSubscriber, PayerRef
from office.eligibility.limits import (
    NO_GATE,
    PayerGate,
    PayerLimit,
    RateTokens,
    payer_limit,
    payer_limits,
)
from office.eligibility.record import ORPHANED_AFTER, new_trace, record_pending
from office.eligibility.select_due import (
    Due,
    local_today,
    select_appointment,
    select_due,
    select_refresh,
)
from office.eligibility.store import AnswersNotStored
from office.eligibility.summary import OUTCOMES, summarize
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
    "NO_GATE",
    "ORPHANED_AFTER",
    "OUTCOMES",
    "ROLES",
    "Aaa",
    "AaaAction",
    "Alert",
    "AlertContext",
    "AlertKind",
    "AnswersNotStored",
    "BatchConfig",
    "BatchOutcome",
    "Benefit",
    "ChecksStillPending",
    "CoverageStatus",
    "Due",
    "EligibilityRequest",
    "EligibilityResult",
    "Entity",
    "Inquiries",
    "Inquiry",
    "MissingSubscriber",
    "PayerGate",
    "PayerLimit",
    "PayerRef",
    "Person",
    "RateTokens",
    "RetryPolicy",
    "TokenBucket",
    "alerts_for",
    "deductible_remaining",
    "failure_alert",
    "local_today",
    "new_trace",
    "payer_limit",
    "payer_limits",
    "record_pending",
    "registration_alert",
    "run_batch",
    "select_appointment",
    "select_due",
    "select_refresh",
    "summarize",
    "visit_copay",
]
