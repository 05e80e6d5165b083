"""Patient records in: every source normalized, validated, matched, applied with an audit.

- `updates`: the normalized records every parser produces (`PatientUpdate`,
  `CoverageUpdate`, `MergeRequest`, `BookingUpdate`, `RecordBatch`, `CLEAR`);
- `validate`: `validate(update)` and `normalize(update)`, one set of rules;
- `match`: candidate scores with their per-field weights;
- `apply`: `apply_record(session, batch, actor=, now=)` → `ApplyOutcome`;
- `review`: what a person decides about held changes (approve, reject);
- `policy`: which fields wait for a person when the patient is the source.
"""

from __future__ import annotations

from office.records.apply import (
    ApplyOutcome,
    ApplyStatus,
    RecordResult,
    apply_record,
    apply_records,
)
from office.records.updates import (
    CLEAR,
    BookingUpdate,
    ConsentUpdate,
    CoverageUpdate,
    Identifier,
    MergeRequest,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Submitter,
)
from office.records.validate import Problem, normalize, validate

__all__ = [
    "CLEAR",
    "ApplyOutcome",
    "ApplyStatus",
    "BookingUpdate",
    "ConsentUpdate",
    "CoverageUpdate",
    "Identifier",
    "MergeRequest",
    "PatientUpdate",
    "Problem",
    "RecordBatch",
    "RecordResult",
    "SourceKind",
    "Submitter",
    "apply_record",
    "apply_records",
    "normalize",
    "validate",
]
