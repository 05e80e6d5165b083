"""Validation and normalization of record updates, before anything is looked up or applied.

`validate(update)` lists every problem; `normalize(update)` returns the same update with
phones in E.164, emails and codes in their canonical case and names trimmed (case kept).
Both read the same rules (`_check`), so what is validated is exactly what is applied.
A problem names where (the row or message) and the field, never the value: it is patient
data, and problems end up in the inbox's reason and on the terminal.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from office.contacts import email_problem, phone_problem, typed_problem
from office.records.updates import (
    CLEAR,
    ConsentUpdate,
    CoverageUpdate,
    Identifier,
    MergeRequest,
    PatientUpdate,
    RecordBatch,
)

__all__ = [
    "MBI_PATTERN",
    "US_STATES",
    "Problem",
    "check_batch",
    "is_medicare",
    "normalize",
    "validate",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a record cannot be applied: where, which field, what is wrong (no value)."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.field}: {self.message}"


_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY "
    "AS GU MP PR VI UM AA AE AP"
)
US_STATES: Final = frozenset(_STATE_CODES.split(" "))
_ZIP = re.compile(r"\d{5}(-\d{4})?")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,4})?")
# Medicare Beneficiary Identifier: 11 characters, positions 2, 5, 8, 9 letters, 1, 4, 7,
# 10, 11 digits, 3 and 6 either; the letters S, L, O, I, B and Z are never used.
_L = "[AC-HJKMNP-RT-Y]"
_E = "[AC-HJKMNP-RT-Y0-9]"
MBI_PATTERN: Final = re.compile(f"[1-9]{_L}{_E}[0-9]{_L}{_E}[0-9]{_L}{_L}[0-9][0-9]")
_SEX = {
    "M": "M",
    "MALE": "M",
    "F": "F",
    "FEMALE": "F",
    "U": "U",
    "UNKNOWN": "U",
    "O": "U",
    "OTHER": "U",
    "A": "U",
    "N": "U",
    "X": "U",
}
_RELATIONSHIP = {
    "18": "18",
    "SELF": "18",
    "01": "01",
    "1": "01",
    "SPOUSE": "01",
    "19": "19",
    "CHILD": "19",
    "20": "20",
    "21": "21",
    "39": "39",
    "40": "40",
    "53": "53",
    "G8": "G8",
    "OTHER": "G8",
}
_CHANNELS = frozenset({"email", "sms"})
# Column widths of the patients and coverages tables.
_WIDTH = {
    "mrn": 40,
    "first_name": 100,
    "middle_name": 100,
    "last_name": 100,
    "suffix": 20,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "member_id": 80,
    "group_number": 80,
    "plan_name": 200,
    "subscriber_first_name": 100,
    "subscriber_last_name": 100,
    "payer_code": 80,
    "payer_name": 200,
}
_REQUIRED = frozenset({"first_name", "last_name", "date_of_birth", "sex", "language"})
_MAX_AGE_YEARS = 120
_REGION = "US"  # phone numbers without a country code are this region's


def validate(
    update: PatientUpdate | MergeRequest,
    *,
    where: str = "",
    today: date | None = None,
    mbi_payers: Collection[str] = (),
) -> list[Problem]:
    """Every problem with one update; empty when it can be applied.

    Args:
        update: The normalized record.
        where: How problems name its payload ("row 12", "message 4711").
        today: The date a date of birth is compared with (today, UTC, by default).
        mbi_payers: Payer codes whose member ids are Medicare MBIs (besides any payer
            named or coded "Medicare").
    """
    return _check_any(update, _Context(where, today or datetime.now(UTC).date(), mbi_payers))[1]


def normalize(
    update: PatientUpdate, *, today: date | None = None, mbi_payers: Collection[str] = ()
) -> PatientUpdate:
    """The update as it will be applied: E.164 phones, trimmed names, canonical codes."""
    checked, _ = _check_patient(update, _Context("", today or datetime.now(UTC).date(), mbi_payers))
    return checked


def check_batch(
    batch: RecordBatch, *, today: date | None = None, mbi_payers: Collection[str] = ()
) -> tuple[RecordBatch, list[Problem]]:
    """The batch normalized, and every problem in any of its records."""
    context = _Context(batch.where, today or datetime.now(UTC).date(), mbi_payers)
    records: list[PatientUpdate | MergeRequest] = []
    problems: list[Problem] = []
    for record in batch.records:
        fixed, found = _check_any(record, context)
        records.append(fixed)
        problems.extend(found)
    if not batch.records:
        problems.append(Problem(batch.where, "records", "nothing to apply"))
    checked = RecordBatch(
        records=tuple(records),
        source_kind=batch.source_kind,
        submitter=batch.submitter,
        inbox_id=batch.inbox_id,
        control_id=batch.control_id,
        label=batch.label,
        row=batch.row,
    )
    return checked, problems


def is_medicare(coverage: CoverageUpdate, mbi_payers: Collection[str] = ()) -> bool:
    """Whether the coverage's member id must be an MBI."""
    return _medicare(coverage.payer_code, coverage.payer_name, mbi_payers)


def _medicare(payer_code: str | None, payer_name: str | None, mbi_payers: Collection[str]) -> bool:
    code = (payer_code or "").upper()
    name = (payer_name or "").lower()
    return code in mbi_payers or "medicare" in name or code == "MEDICARE"


@dataclass(frozen=True, slots=True)
class _Context:
    where: str
    today: date
    mbi_payers: Collection[str]


def _check_any(
    record: PatientUpdate | MergeRequest, context: _Context
) -> tuple[Any, list[Problem]]:
    if isinstance(record, MergeRequest):
        survivor, problems = _check_patient(record.survivor, context)
        if record.retired_mrn is None and record.retired_identifier is None:
            problems.append(Problem(context.where, "retired", "names no patient to retire"))
        retired_mrn = _trimmed(record.retired_mrn)
        if record.retired_identifier is not None:
            problems.extend(_identifier_problems(record.retired_identifier, context))
        return dataclasses.replace(record, survivor=survivor, retired_mrn=retired_mrn), problems
    return _check_patient(record, context)


def _check_patient(update: PatientUpdate, context: _Context) -> tuple[PatientUpdate, list[Problem]]:
    # The normalized update is built field by field, not with dataclasses.replace: this
    # runs for every row of a file, and replace's walk over the fields cost as much again
    # as building it (tests/records/test_apply.py checks that no field is dropped).
    problems: list[Problem] = []
    where = context.where
    values: dict[str, Any] = {}
    for name, rule in _PATIENT_RULES.items():
        raw = getattr(update, name)
        if raw is CLEAR:
            if name in _REQUIRED:
                problems.append(Problem(where, name, "cannot be cleared"))
        elif raw is not None:
            raw, message = rule(raw, context, name)
            if message:
                problems.append(Problem(where, name, message))
        values[name] = raw
    mrn = _trimmed(update.mrn)
    if mrn is not None and len(mrn) > _WIDTH["mrn"]:
        problems.append(Problem(where, "mrn", f"longer than {_WIDTH['mrn']} characters"))
    for identifier in update.identifiers:
        problems.extend(_identifier_problems(identifier, context))
    first, last, born = values["first_name"], values["last_name"], values["date_of_birth"]
    named = first not in (None, "", CLEAR) and last not in (None, "", CLEAR)
    if not (mrn or update.identifiers) and not (named and born not in (None, CLEAR)):
        problems.append(
            Problem(where, "identity", "no MRN, sender id, or name and date of birth to match on")
        )
    coverages = []
    for index, coverage in enumerate(update.coverages, start=1):
        fixed_coverage, found = _check_coverage(coverage, context, index)
        coverages.append(fixed_coverage)
        problems.extend(found)
    if len(update.coverages) > 1:
        ranks = [c.rank for c in update.coverages if c.rank is not None]
        if len(ranks) != len(set(ranks)):
            problems.append(Problem(where, "coverage.rank", "two coverages with the same rank"))
    for consent in update.consents:
        if consent.channel not in _CHANNELS:
            problems.append(Problem(where, "consent", "channel must be email or sms"))
    consents = tuple(
        [
            ConsentUpdate(c.channel.strip().lower(), c.granted, c.source[:80])
            for c in update.consents
        ]
    )
    checked = PatientUpdate(
        mrn=mrn,
        identifiers=update.identifiers,
        coverages=tuple(coverages),
        consents=consents,
        expected_version=update.expected_version,
        occurred_at=update.occurred_at,
        **values,
    )
    return checked, problems


def _check_coverage(
    coverage: CoverageUpdate, context: _Context, index: int
) -> tuple[CoverageUpdate, list[Problem]]:
    problems: list[Problem] = []
    where = context.where

    def report(name: str, message: str) -> None:
        problems.append(Problem(where, f"coverage {index}.{name}", message))

    payer_code = _trimmed(coverage.payer_code)
    payer_name = _trimmed(coverage.payer_name)
    if payer_code is None and payer_name is None:
        report("payer", "names no payer (payer_code or payer_name)")
    if payer_code is not None and len(payer_code) > _WIDTH["payer_code"]:
        report("payer_code", f"longer than {_WIDTH['payer_code']} characters")
    if payer_name is not None and len(payer_name) > _WIDTH["payer_name"]:
        report("payer_name", f"longer than {_WIDTH['payer_name']} characters")
    if coverage.rank is not None and coverage.rank not in (1, 2, 3):
        report("rank", "must be 1, 2 or 3")
    values: dict[str, Any] = {}
    for name, rule in _COVERAGE_RULES.items():
        raw = getattr(coverage, name)
        if raw is CLEAR:
            if name in ("member_id", "relationship_code"):
                report(name, "cannot be cleared")
        elif raw is not None:
            raw, message = rule(raw, context, name)
            if message:
                report(name, message)
        values[name] = raw
    member = values["member_id"]
    if isinstance(member, str) and _medicare(payer_code, payer_name, context.mbi_payers):
        mbi = member.replace("-", "").replace(" ", "").upper()
        if MBI_PATTERN.fullmatch(mbi) is None:
            report("member_id", "not a Medicare Beneficiary Identifier (MBI)")
        values["member_id"] = mbi
    start, end = values["effective_from"], values["effective_to"]
    if isinstance(start, date) and isinstance(end, date) and end < start:
        report("effective_to", "before effective_from")
    checked = CoverageUpdate(
        payer_code=payer_code,
        payer_name=payer_name,
        rank=coverage.rank,
        expected_version=coverage.expected_version,
        **values,
    )
    return checked, problems


def _identifier_problems(identifier: Identifier, context: _Context) -> list[Problem]:
    problems = []
    if not identifier.system.strip() or len(identifier.system) > 80:
        problems.append(Problem(context.where, "identifier.system", "empty or too long"))
    if not identifier.value.strip() or len(identifier.value) > 80:
        problems.append(Problem(context.where, "identifier.value", "empty or too long"))
    return problems


# --- the rules, one per field: (raw, context, name) -> (normalized, problem or "") ---------

Rule = Callable[[Any, _Context, str], tuple[Any, str]]


def _trimmed(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    return text or None


def _text(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    if not isinstance(raw, str):
        return raw, "must be text"
    text = " ".join(raw.split())
    width = _WIDTH.get(name)
    if not text:
        return text, "is blank (leave it out to keep the stored value)"
    if width is not None and len(text) > width:
        return text, f"longer than {width} characters"
    return text, ""


def _birth_date(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    if not isinstance(raw, date) or isinstance(raw, datetime):
        return raw, "must be a date"
    if raw > context.today:
        return raw, "is in the future"
    try:
        oldest = context.today.replace(year=context.today.year - _MAX_AGE_YEARS)
    except ValueError:  # 29 February
        oldest = context.today.replace(year=context.today.year - _MAX_AGE_YEARS, day=28)
    if raw < oldest:
        return raw, f"more than {_MAX_AGE_YEARS} years ago"
    return raw, ""


def _date(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    if not isinstance(raw, date) or isinstance(raw, datetime):
        return raw, "must be a date"
    return raw, ""


def _sex(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    code = _SEX.get(str(raw).strip().upper())
    return (code, "") if code else (raw, "must be M, F or U")


def _phone(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    try:
        number = phonenumbers.parse(str(raw), _REGION)
    except phonenumbers.NumberParseException:
        return raw, "not a phone number"
    # Valid for the office's own region is valid; asking that first spares phonenumbers
    # finding the region of every US number before checking it again for that region.
    if not (
        phonenumbers.is_valid_number_for_region(number, _REGION)
        or phonenumbers.is_valid_number(number)
    ):
        return raw, "not a valid phone number"
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if typed_problem(str(raw).strip()) or phone_problem(e164):
        # The parser skips what it cannot read; a line break or a second number is refused.
        return raw, "not a single phone number"
    return e164, ""


def _email(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    text = str(raw).strip()
    if email_problem(text) is None:
        # A plain ASCII dot-atom address, as nearly all are: email-validator accepts its
        # part before the @ as it is (lowering only the RFC 2142 role names), so only the
        # domain needs the library, once per domain: a practice's patients share a few
        # dozen (tests/records/test_emails.py checks this against validate_email).
        local, _, domain = text.rpartition("@")
        checked_domain = _email_domain(domain)
        if checked_domain is None:
            return raw, "not a valid email address"
        if local.lower() in _ROLE_MAILBOXES:
            local = local.lower()
        normalized = f"{local}@{checked_domain}"
    else:
        try:
            normalized = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError:
            return raw, "not a valid email address"
    if len(normalized) > 254:
        return raw, "longer than 254 characters"
    if email_problem(normalized):
        return raw, "not one plain email address"
    return normalized, ""


_ROLE_MAILBOXES: Final = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


@functools.lru_cache(maxsize=4096)
def _email_domain(domain: str) -> str | None:
    """`domain` as email-validator normalizes it, or None when it refuses it. The address
    asked about is the shortest there is with that domain: its length limit is the one
    the real address, no shorter, has already met."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def _state(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    code = str(raw).strip().upper()
    return (code, "") if code in US_STATES else (raw, "not a US state or territory code")


def _zip(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    text = str(raw).strip()
    if len(text) == 9 and text.isdigit():
        text = f"{text[:5]}-{text[5:]}"
    return (text, "") if _ZIP.fullmatch(text) else (raw, "not a US ZIP code")


def _language(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    text = str(raw).strip().lower().replace("_", "-")
    return (text, "") if _LANGUAGE.fullmatch(text) else (raw, "not a language code (en, es)")


def _relationship(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    code = _RELATIONSHIP.get(str(raw).strip().upper())
    return (code, "") if code else (raw, "not a relationship code (18 self, 01, 19, G8)")


def _money(raw: Any, context: _Context, name: str) -> tuple[Any, str]:
    try:
        amount = Decimal(str(raw).strip().lstrip("$"))
    except ArithmeticError:
        return raw, "not an amount"
    if not amount.is_finite() or amount < 0 or amount >= Decimal("100000000"):
        return raw, "not an amount"
    return amount.quantize(Decimal("0.01")), ""


_PATIENT_RULES: Final[dict[str, Rule]] = {
    "first_name": _text,
    "middle_name": _text,
    "last_name": _text,
    "suffix": _text,
    "date_of_birth": _birth_date,
    "sex": _sex,
    "phone": _phone,
    "email": _email,
    "address_line1": _text,
    "address_line2": _text,
    "city": _text,
    "state": _state,
    "postal_code": _zip,
    "language": _language,
}
_COVERAGE_RULES: Final[dict[str, Rule]] = {
    "member_id": _text,
    "group_number": _text,
    "plan_name": _text,
    "effective_from": _date,
    "effective_to": _date,
    "relationship_code": _relationship,
    "subscriber_first_name": _text,
    "subscriber_last_name": _text,
    "subscriber_date_of_birth": _birth_date,
    "subscriber_sex": _sex,
    "copay_on_file": _money,
}
