"""Deciding what happens to one message: the rules, in order, and the reason recorded.

Pure: a `Parsed` message and a `RuleSet` in, a `Decision` out. The same code
serves the routing run and `office mail test-rules`, so what staff try is what
runs. Two decisions come before the rules: a delivery status notification is a
bounce (`office.mail.bounces` handles it), and a message no rule routes goes to
front-desk triage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from office.mail.parse import Parsed
from office.mail.rules import RuleSet

__all__ = [
    "BOUNCE_RULE",
    "SPAM_QUEUE",
    "TRIAGE_QUEUE",
    "TRIAGE_RULE",
    "Decision",
    "classify",
]

TRIAGE_QUEUE = "front_desk"
TRIAGE_RULE = "default:front-desk-triage"
BOUNCE_RULE = "builtin:delivery-status"
SPAM_QUEUE = "spam"


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a message goes and what else happens, with the rules that said so.

    Attributes:
        rule: The rule that chose the queue (or a built-in: triage, bounce).
        queue: A role ("billing"), "staff:<email>" for a person, or "spam".
        matched: Every rule that matched, in order; the reason shown to staff.
    """

    rule: str
    category: str
    queue: str
    matched: tuple[str, ...] = ()
    forward_to: tuple[str, ...] = ()
    acknowledge: str | None = None
    no_acknowledge: bool = False
    link_patient: bool = False
    spam: bool = False

    @property
    def triage(self) -> bool:
        return self.rule == TRIAGE_RULE

    @property
    def actions(self) -> tuple[str, ...]:
        """The action names, for counts: route, forward, acknowledge, link, spam."""
        names = ["spam" if self.spam else "route"]
        if self.forward_to:
            names.append("forward")
        if self.acknowledge and not self.no_acknowledge:
            names.append("acknowledge")
        if self.link_patient:
            names.append("link_patient")
        return tuple(names)


@dataclass
class _Draft:
    matched: list[str] = field(default_factory=list)
    rule: str | None = None
    category: str | None = None
    queue: str | None = None
    forward_to: list[str] = field(default_factory=list)
    acknowledge: str | None = None
    no_acknowledge: bool = False
    link_patient: bool = False
    spam: bool = False


def classify(mail: Parsed, rules: RuleSet) -> Decision:
    """Run the rules top to bottom until one stops (see `office.mail.rules`)."""
    if mail.report is not None:
        return Decision(
            rule=BOUNCE_RULE,
            category="bounce",
            queue=TRIAGE_QUEUE,
            matched=(BOUNCE_RULE,),
            no_acknowledge=True,
        )
    draft = _Draft()
    for rule in rules.rules:
        if not rule.test(mail):
            continue
        draft.matched.append(rule.name)
        stop = False
        for action in rule.actions:
            stop = _apply(draft, rule.name, rule.category, action.kind, action.value) or stop
        if stop:
            break
    if draft.queue is None:
        draft.rule, draft.category, draft.queue = TRIAGE_RULE, "triage", TRIAGE_QUEUE
    return Decision(
        rule=draft.rule or TRIAGE_RULE,
        category=draft.category or "triage",
        queue=draft.queue,
        matched=tuple(draft.matched),
        forward_to=tuple(dict.fromkeys(draft.forward_to)),
        acknowledge=None if draft.spam else draft.acknowledge,
        no_acknowledge=draft.no_acknowledge or draft.spam,
        link_patient=draft.link_patient and not draft.spam,
        spam=draft.spam,
    )


def _apply(draft: _Draft, rule: str, category: str, kind: str, value: str) -> bool:
    """Apply one action; True when it is `stop`."""
    if kind == "stop":
        return True
    if kind in ("route", "person", "spam") and draft.queue is None:
        draft.rule, draft.category = rule, ("spam" if kind == "spam" else category)
        draft.queue = (
            SPAM_QUEUE if kind == "spam" else (f"staff:{value}" if kind == "person" else value)
        )
        draft.spam = kind == "spam"
    elif kind == "forward":
        draft.forward_to.append(value)
    elif kind == "acknowledge" and draft.acknowledge is None:
        draft.acknowledge = value
    elif kind == "no_acknowledge":
        draft.no_acknowledge = True
    elif kind == "link_patient":
        draft.link_patient = True
    return False
