"""Small builders shared by the foundation tests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.demo_import import seed_practice
from office.signing import sign_webhook

WEBHOOK_SECRET = "test-webhook-secret-32-bytes-or-longer"  # as in tests/conftest.py
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
# When the practice-management system made a test booking: before NOW and the real clock.
EVENT_AT = NOW - timedelta(days=300)


def signed_headers(
    body: bytes, *, at: int | None = None, key: str | None = None, source: str = "bookings"
) -> dict[str, str]:
    """Headers of a request signed for `source` under `key` (none when None)."""
    timestamp = int(time.time()) if at is None else at
    headers = {
        "X-Office-Timestamp": str(timestamp),
        "X-Office-Signature": sign_webhook(WEBHOOK_SECRET, timestamp, source, key or "", body),
        "Content-Type": "application/json",
    }
    if key:
        headers["Idempotency-Key"] = key
    return headers


def seed_small(factory: sessionmaker[Session], home: Path) -> None:
    """A small demo practice, imported as the demo imports its own (files under `home`)."""
    seed_practice(factory, home, seed=7, now=NOW, patients=20, appointments=30)


def booking(**fields: object) -> bytes:
    payload: dict[str, object] = {
        "event": "booked",
        "external_id": "PM-1",
        "patient_mrn": "MRN100003",
        "provider_npi": "",
        "location_id": 1,
        "appointment_type": "follow-up",
        "start": (NOW + timedelta(days=2)).isoformat(),
        "occurred_at": EVENT_AT.isoformat(),
    }
    payload.update(fields)
    return json.dumps(payload).encode()
