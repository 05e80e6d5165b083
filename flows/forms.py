"""How flow parameters read in Prefect's run form: a title per field, and practice-time instants.

Prefect builds a deployment's form from its flow's signature: the description of each field
comes from the flow's `Args:` docstring, but the title is always the parameter's name
(`prefect._internal.pydantic.v2_schema.process_v2_params` overwrites `Field(title=)`), so a
title travels in `json_schema_extra`, which is applied last.

An instant typed in the form or passed by `prefect deployment run` may have no offset. The
schema does not say `format: date-time`, which the UI's validation holds to RFC 3339 (offset
required); a pattern accepts both, and the flow reads a value without an offset as the
practice's wall-clock time (`practice_instant`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from flows.runtime import office
from office.clock import as_utc
from office.models import utcnow

__all__ = [
    "DAY_PATTERN",
    "INSTANT_PATTERN",
    "AsOf",
    "PracticeDay",
    "PracticeTime",
    "practice_instant",
    "titled",
]

INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})?$"

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

PracticeDay = Annotated[
    date,
    WithJsonSchema({"type": "string", "pattern": DAY_PATTERN, "examples": ["2026-12-31"]}),
]
"""A calendar day in the practice (a last day of work), YYYY-MM-DD."""

PracticeTime = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": INSTANT_PATTERN,
            "examples": ["2026-12-01T08:30", "2026-12-01T14:30:00Z"],
        }
    ),
]
"""A datetime parameter; without an offset it is wall-clock time in the practice's zone."""


def titled(title: str, **constraints: Any) -> Any:
    """A form field's title and bounds, for `Annotated[int, titled("Days ahead", ge=0)]`."""
    return Field(json_schema_extra={"title": title}, **constraints)


AsOf = Annotated[PracticeTime | None, titled("As of (practice time)")]
"""The optional `now` every scheduled flow takes: empty means the real clock."""


def practice_instant(now: datetime | None) -> datetime:
    """The UTC instant a run computes from: `now` (read in the practice's zone), or the time."""
    return utcnow() if now is None else as_utc(now, office().settings.practice_timezone)
