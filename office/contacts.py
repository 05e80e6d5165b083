"""Recipients: exactly one plain email address or one E.164 number, or the reason it is not.

One rule, read where an address enters the database (`office.models.Patient`, the
records' normalization) and again just before a message goes (reminder routing, the
outbox sender, the mail adapters): a stored value with a line break, a list separator
or a display name would otherwise reach a header or an SMTP envelope as something else
(``x@y\\r\\nBcc: …`` adds a recipient, ``a@x, b@y`` is two people, ``a;b@x`` was cut to
``a``). The reasons are stable codes, recorded on outbox rows and work items; they never
hold the value, which is patient data.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "CONTROL_CHARACTER",
    "LIST_SEPARATOR",
    "NOT_E164",
    "NOT_ONE_ADDRESS",
    "REASON_PREFIX",
    "RecipientError",
    "check_email",
    "check_phone",
    "email_problem",
    "is_recipient_reason",
    "phone_problem",
    "recipient_problem",
    "typed_problem",
]

REASON_PREFIX: Final = "bad_recipient:"
CONTROL_CHARACTER: Final = REASON_PREFIX + "control_character"
LIST_SEPARATOR: Final = REASON_PREFIX + "list_separator"
NOT_ONE_ADDRESS: Final = REASON_PREFIX + "not_one_plain_address"
NOT_E164: Final = REASON_PREFIX + "not_e164_number"

_MAX_EMAIL = 254  # RFC 5321's path limit, and the column's width
_MAX_LOCAL = 64
# RFC 5322 dot-atom: no quotes, comments, display names, brackets or spaces.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)*{_LABEL}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SEPARATORS = frozenset(",;")


class RecipientError(ValueError):
    """A recipient that is not one plain address or number; `reason` is its code, no value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _control(text: str) -> bool:
    # Cc (C0/C1 and DEL), Cf (zero-width, bidi overrides) and the Unicode line breaks. A
    # printable string has none of them (str.isprintable refuses every "Other" and
    # "Separator" character but the ASCII space), and asking costs one C call, not one
    # per character: every imported phone and email goes through here.
    if text.isprintable():
        return False
    return any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text)


def _shape(text: str) -> str | None:
    if text.isprintable():
        # No control character, and the only white space it can hold is the ASCII space.
        if " " in text or not _SEPARATORS.isdisjoint(text):
            return LIST_SEPARATOR
        return None
    if _control(text):
        return CONTROL_CHARACTER
    if any(char in _SEPARATORS or char.isspace() for char in text):
        return LIST_SEPARATOR
    return None


def typed_problem(text: str) -> str | None:
    """Control characters or list separators in a value as typed (spaces allowed), or None.

    A phone number is typed with spaces and brackets before it is normalized; a line
    break or a second number behind a separator must still be refused.
    """
    if _control(text):
        return CONTROL_CHARACTER
    if not _SEPARATORS.isdisjoint(text):
        return LIST_SEPARATOR
    return None


def email_problem(address: str) -> str | None:
    """Why `address` is not exactly one plain ``local@domain`` address, or None."""
    shape = _shape(address)
    if shape is not None:
        return shape
    if (
        len(address) > _MAX_EMAIL
        or not address.isascii()
        or not _EMAIL.fullmatch(address)
        or len(address.partition("@")[0]) > _MAX_LOCAL
        or len(address.rpartition("@")[2]) > 253
    ):
        return NOT_ONE_ADDRESS
    return None


def phone_problem(number: str) -> str | None:
    """Why `number` is not exactly one E.164 number (``+`` and 7 to 15 digits), or None."""
    shape = _shape(number)
    if shape is not None:
        return shape
    if not _E164.fullmatch(number):
        return NOT_E164
    return None


def recipient_problem(channel: str, address: str) -> str | None:
    """Why `address` cannot receive a message on `channel` ("email" or "sms"), or None."""
    if channel == "email":
        return email_problem(address)
    if channel == "sms":
        return phone_problem(address)
    raise ValueError(f"no recipient rule for channel {channel!r}")


def check_email(address: str) -> str:
    """`address` when it is one plain email address.

    Raises:
        RecipientError: naming the reason, never the value.
    """
    problem = email_problem(address)
    if problem is not None:
        raise RecipientError(problem)
    return address


def check_phone(number: str) -> str:
    """`number` when it is one E.164 number.

    Raises:
        RecipientError: naming the reason, never the value.
    """
    problem = phone_problem(number)
    if problem is not None:
        raise RecipientError(problem)
    return number


def is_recipient_reason(reason: str | None) -> bool:
    """Whether a skip reason is one of this module's codes."""
    return bool(reason) and str(reason).startswith(REASON_PREFIX)
