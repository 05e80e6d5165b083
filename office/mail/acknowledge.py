"""When an automatic acknowledgement may go out (RFC 3834), and to whom.

An acknowledgement is refused for anything automatic or bulk, for daemons and
no-reply senders, for the practice's own addresses, for a backlog import and for
mail that was already old when it arrived; the per-sender limit (one per period)
is kept by `office.mail.route` in the database. What is sent carries no patient
data: the template names the practice and the mailbox, never the subject.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import getaddresses

from office.contacts import email_problem
from office.mail.parse import Parsed

__all__ = ["STALE_AFTER", "ack_recipient", "ack_refusal"]

STALE_AFTER = timedelta(days=3)
"""Mail dated this long before it was stored is old news, not a new request: no reply."""

_DAEMON_LOCALS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "bounce",
        "bounces",
        "listserv",
        "majordomo",
        "nobody",
        "root",
    }
)
_DAEMON_PREFIXES = ("noreply", "no-reply", "donotreply", "do-not-reply", "bounce", "owner-")
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_AUTOREPLY_HEADERS = ("x-auto-response-suppress", "x-autoreply", "x-autorespond", "x-loop")


def ack_recipient(mail: Parsed) -> str:
    """Where a reply goes: the envelope sender (Return-Path) when known, else From."""
    if mail.return_path is not None:
        return mail.return_path
    return mail.sender


def ack_refusal(
    mail: Parsed,
    *,
    own_addresses: frozenset[str],
    may_acknowledge: bool,
    stored_at: datetime,
) -> str | None:
    """Why this message must get no acknowledgement, or None when one may go out.

    Args:
        own_addresses: The practice's addresses (mailboxes, reminder sender, extras).
        may_acknowledge: False for a backlog import.
        stored_at: When the message was stored; with its Date, tells old mail apart.
    """
    if not may_acknowledge:
        return "backlog import"
    if mail.report is not None:
        return "delivery status notification"
    auto = (mail.header("auto-submitted") or "no").split(";", 1)[0].strip().lower()
    if auto != "no":
        return "Auto-Submitted"
    if (mail.header("precedence") or "").strip().lower() in _BULK_PRECEDENCE:
        return "Precedence bulk, list or junk"
    if any(name.startswith("list-") for name in mail.headers):
        return "mailing list"
    if any(name in mail.headers for name in _AUTOREPLY_HEADERS):
        return "automatic-reply suppression header"
    recipient = ack_recipient(mail)
    if not recipient:
        return "null or missing sender"
    if not _one_sender(mail) or email_problem(recipient) is not None:
        # `a;b@x` reads as `a` and `b@x`, `a@x, b@y` as two: the reply would go to
        # someone the header only seemed to name.
        return "sender is not one plain address"
    local = recipient.partition("@")[0]
    if local in _DAEMON_LOCALS or local.startswith(_DAEMON_PREFIXES) or local.endswith("-request"):
        return "daemon or no-reply sender"
    if recipient in own_addresses or mail.sender in own_addresses:
        return "the practice's own address"
    if mail.date is not None and stored_at - mail.date > STALE_AFTER:
        return "old message"
    return None


def _one_sender(mail: Parsed) -> bool:
    """Whether the header the reply address came from names exactly one address."""
    # The same header value `office.mail.parse` read the address from.
    if mail.return_path is not None:
        value = mail.headers.get("return-path", ("",))[-1]
    else:
        value = mail.header("from") or ""
    try:
        pairs = getaddresses([value])
    except Exception:
        return False
    return len(pairs) == 1 and bool(pairs[0][1])
