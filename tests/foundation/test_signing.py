"""The webhook signature check accepts exactly what was signed (time, source, key, body),
within five minutes, and never raises on what a client sends."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from office.signing import is_idempotency_key, sign_webhook, verify_webhook

SECRET = "s3cret-of-thirty-two-bytes-or-more"
NOW = 1_800_000_000

sources = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,39}", fullmatch=True)
keys = st.just("") | st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="."),
    min_size=1,
    max_size=200,
)


def verify(
    timestamp: object, signature: str, *, source: str = "bookings", key: str = "", body: bytes
) -> bool:
    return verify_webhook(
        SECRET, str(timestamp), signature, source=source, key=key, body=body, now=NOW
    )


@given(body=st.binary(max_size=512), skew=st.integers(-300, 300), source=sources, key=keys)
def test_signed_request_verifies_within_the_window(
    body: bytes, skew: int, source: str, key: str
) -> None:
    signature = sign_webhook(SECRET, NOW + skew, source, key, body)
    assert verify(NOW + skew, signature, source=source, key=key, body=body)


@given(
    body=st.binary(max_size=64),
    other_body=st.binary(max_size=64),
    source=sources,
    other_source=sources,
    key=keys,
    other_key=keys,
)
def test_the_signature_binds_body_source_and_key(
    body: bytes, other_body: bytes, source: str, other_source: str, key: str, other_key: str
) -> None:
    """A signed request replayed with another key, none, or to another source is refused."""
    signature = sign_webhook(SECRET, NOW, source, key, body)
    same = (body, source, key) == (other_body, other_source, other_key)
    assert verify(NOW, signature, source=other_source, key=other_key, body=other_body) is same


def test_the_old_signature_over_time_and_body_only_is_refused() -> None:
    old = hmac.new(SECRET.encode(), f"{NOW}.".encode() + b"{}", hashlib.sha256).hexdigest()
    assert not verify(NOW, "sha256=" + old, body=b"{}")


@given(skew=st.integers(301, 10**6), sign=st.sampled_from([-1, 1]))
def test_outside_five_minutes_fails(skew: int, sign: int) -> None:
    at = NOW + sign * skew
    assert not verify(at, sign_webhook(SECRET, at, "bookings", "", b"{}"), body=b"{}")


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 400,
        "1" * 13,
        "-1800000000",
        "+1800000000",
        " 1800000000",
        "1_800_000_000",
        "\uff11\uff18\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width digits
        "1800000000\n",
        "",
    ],
)
def test_a_timestamp_that_is_not_plain_unix_seconds_fails(timestamp: str) -> None:
    signature = sign_webhook(SECRET, NOW, "bookings", "", b"{}")
    assert not verify(timestamp, signature, body=b"{}")


@given(
    timestamp=st.text(max_size=40) | st.from_regex(r"[0-9]{10,500}", fullmatch=True),
    signature=st.text(max_size=80),
    source=st.text(max_size=50),
    key=st.text(max_size=250),
)
def test_garbage_headers_fail_without_raising(
    timestamp: str, signature: str, source: str, key: str
) -> None:
    assert not verify(timestamp, signature, source=source, key=key, body=b"{}")


@pytest.mark.parametrize("signature", ["sha256=" + "\u00e9" * 64, "sha256=" + "A" * 64, "\u2603"])
def test_a_signature_not_in_lower_case_hex_fails(signature: str) -> None:
    assert not verify(NOW, signature, body=b"{}")


def test_wrong_secret_fails() -> None:
    signature = sign_webhook("other-secret-of-thirty-two-bytes", NOW, "bookings", "", b"{}")
    assert not verify(NOW, signature, body=b"{}")
    assert not verify_webhook(
        SECRET, None, signature, source="bookings", key="", body=b"{}", now=NOW
    )


@pytest.mark.parametrize(
    ("source", "key"), [("book.ings", ""), ("bookings", "a.b"), ("bookings\n", ""), ("", "")]
)
def test_what_cannot_be_split_back_is_never_signed(source: str, key: str) -> None:
    """With a "." in the source or key, one signed string would fit two requests."""
    with pytest.raises(ValueError, match="cannot be signed"):
        sign_webhook(SECRET, NOW, source, key, b"{}")


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("k", True),
        ("x" * 200, True),
        ("x" * 201, False),
        ("a.b", False),
        ("a b", False),
        ("caf\u00e9", False),
        ("", False),
        ("tab\t", False),
    ],
)
def test_idempotency_keys(key: str, valid: bool) -> None:
    assert is_idempotency_key(key) is valid


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
