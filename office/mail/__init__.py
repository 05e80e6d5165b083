"""Inbound mail routing: store first, parse defensively, route by rules staff can test.

A run, per mailbox: `ingest` stores what the server holds (raw bytes and a row,
committed) -> `route_pending` parses, classifies and acts, recording each
decision with its rule -> `finish_on_server` moves or flags what was decided.
Acknowledgements and forwards wait in the outbox for `office.mailing.send_outbox`.
"""

from __future__ import annotations

from office.mail.acknowledge import ack_recipient, ack_refusal
from office.mail.board import RoutedMail, queue_counts, routed_mail
from office.mail.classify import Decision, classify
from office.mail.outgoing import MailIdentity, mail_composers
from office.mail.parse import Attachment, Parsed, Unreadable, parse_mail
from office.mail.preview import Trial, try_rules
from office.mail.route import ACK_KIND, FORWARD_KIND, MailTally, RouteConfig, route_pending
from office.mail.rules import RulesError, RuleSet, load_rules, parse_rules
from office.mail.store import IngestResult, dedupe_key, finish_on_server, ingest

__all__ = [
    "ACK_KIND",
    "FORWARD_KIND",
    "Attachment",
    "Decision",
    "IngestResult",
    "MailIdentity",
    "MailTally",
    "Parsed",
    "RouteConfig",
    "RoutedMail",
    "RuleSet",
    "RulesError",
    "Trial",
    "Unreadable",
    "ack_recipient",
    "ack_refusal",
    "classify",
    "dedupe_key",
    "finish_on_server",
    "ingest",
    "load_rules",
    "mail_composers",
    "parse_mail",
    "parse_rules",
    "queue_counts",
    "route_pending",
    "routed_mail",
    "try_rules",
]
