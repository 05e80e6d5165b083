"""Email addresses in records: the plain-address path (the domain checked once per domain)
gives what email-validator on the whole address gives, for any input."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from office.contacts import email_problem
from office.records.updates import PatientUpdate
from office.records.validate import normalize, validate
from tests.records.conftest import NOW

TODAY = NOW.date()
PLAIN_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}(\.[A-Za-z0-9_+-]{1,8}){0,2}"
PLAIN_DOMAIN = r"([A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?\.){0,3}[A-Za-z]{2,6}"
LOCALS = st.one_of(
    st.from_regex(PLAIN_LOCAL, fullmatch=True),
    st.sampled_from(["Postmaster", "ABUSE", "info", "Ann.Lee", "a" * 64, "a" * 65, ".a", "a..b"]),
)
DOMAINS = st.one_of(
    st.from_regex(PLAIN_DOMAIN, fullmatch=True),
    st.sampled_from(
        [
            "EXAMPLE.com",
            "example.test",
            "localhost",
            "host.local",
            "xn--bcher-kva.com",
            "xn--zz.com",
            "a.123",
            "com",
            "-a.com",
            "a-.com",
            f"{'a' * 63}.com",
            f"{'a' * 64}.com",
            ".".join(["a" * 60] * 4) + ".com",
            "\uff41.com",  # a full-width a, which IDNA maps to an ASCII one
            "bücher.de",
            "[127.0.0.1]",
        ]
    ),
)
ADDRESSES = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", LOCALS, DOMAINS),
    st.builds(
        lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
        LOCALS,
        DOMAINS,
        st.sampled_from(["", " ", "\t"]),
    ),
    st.text(max_size=40),
    st.text(alphabet='ab@.-"<> ', max_size=20),
)


def library_verdict(raw: str) -> str | None:
    """What email-validator on the whole address, then the plain-address checks, make of
    `raw`: the normalized address, or None when it is refused."""
    try:
        normalized = validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    if len(normalized) > 254 or email_problem(normalized):
        return None
    return normalized


def records_verdict(raw: str) -> str | None:
    update = PatientUpdate(mrn="M1", email=raw)
    if any(problem.field == "email" for problem in validate(update, today=TODAY)):
        return None
    return normalize(update, today=TODAY).email


@settings(max_examples=400)
@given(ADDRESSES)
def test_an_address_is_taken_or_refused_as_email_validator_takes_or_refuses_it(raw: str) -> None:
    assert records_verdict(raw) == library_verdict(raw)


def test_role_mailboxes_lowered_and_domains_normalized_as_the_library_does() -> None:
    assert records_verdict(" Postmaster@EXAMPLE.com ") == "postmaster@example.com"
    assert records_verdict("Ann.Lee@EXAMPLE.com") == "Ann.Lee@example.com"
    assert records_verdict("ann@xn--bcher-kva.com") is None  # normalizes to a non-ASCII domain
    assert records_verdict("ann@example.test") is None  # a special-use domain
