"""The webhook signature check accepts exactly what was signed, within five minutes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from office.signing import sign_webhook, verify_webhook

SECRET = "s3cret"
NOW = 1_800_000_000


@given(body=st.binary(max_size=512), skew=st.integers(-300, 300))
def test_signed_body_verifies_within_the_window(body: bytes, skew: int) -> None:
    signature = sign_webhook(SECRET, NOW + skew, body)
    assert verify_webhook(SECRET, str(NOW + skew), signature, body, now=NOW)


@given(body=st.binary(max_size=256), other=st.binary(max_size=256))
def test_any_other_body_fails(body: bytes, other: bytes) -> None:
    signature = sign_webhook(SECRET, NOW, body)
    assert verify_webhook(SECRET, str(NOW), signature, other, now=NOW) is (body == other)


@given(skew=st.integers(301, 10**6), sign=st.sampled_from([-1, 1]))
def test_outside_five_minutes_fails(skew: int, sign: int) -> None:
    at = NOW + sign * skew
    assert not verify_webhook(SECRET, str(at), sign_webhook(SECRET, at, b"{}"), b"{}", now=NOW)


@given(timestamp=st.text(max_size=20), signature=st.text(max_size=80))
def test_garbage_headers_fail_without_raising(timestamp: str, signature: str) -> None:
    assert not verify_webhook(SECRET, timestamp, signature, b"{}", now=NOW)


def test_wrong_secret_fails() -> None:
    signature = sign_webhook("other", NOW, b"{}")
    assert not verify_webhook(SECRET, str(NOW), signature, b"{}", now=NOW)
    assert not verify_webhook(SECRET, None, signature, b"{}", now=NOW)


@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(
                ["event", "external_id", "patient_mrn", "provider_npi", "location_id", "start"]
            ),
            st.one_of(st.none(), st.integers(), st.text(max_size=30), st.booleans()),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_booking_parser_raises_only_its_own_error(body: bytes) -> None:
    from office.bookings import parse_booking
    from office.intake import IntakeRejected

    try:
        parse_booking(body)
    except IntakeRejected as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("invalid booking: ")
