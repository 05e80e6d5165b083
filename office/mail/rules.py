"""Staff-editable routing rules (`templates/mail-rules.yaml`): read, validated, compiled.

The language is Sieve's shape in YAML: an ordered list of rules, each a test
(`when`) and actions (`do`), evaluated top to bottom until one says `stop`.
Everything wrong in a file is reported at once, each problem naming the rule
(by name and position) and the field, so staff can fix it before enabling it::

    lists:
      known_labs: ["@quest-labs.example", results@labcorp.example]
    rules:
      - name: lab-results
        category: lab_result
        when:
          any:
            - from: {in_list: known_labs}
            - attachment: {type: application/pdf}
        do: [{route: medical_assistant}, link_patient, stop]

Tests (a list under `when` means all of them): ``from``, ``to``, ``subject`` and
``body`` take a string test (``is``, ``contains``, ``contains_any``,
``matches`` (regular expression), ``domain``, ``in_list``; ``to`` also
``detail``, the +subaddress); ``header: {name, present | is | contains | matches}``;
``attachment: {type | types}`` (``image/*`` allowed); ``any``, ``all``, ``not``; and
``when: always``.
``from`` is true when the sender or, in a forward, the original sender matches.

Actions: ``route: ROLE`` or ``route: {person: STAFF_EMAIL}``, ``forward: ADDRESS``,
``acknowledge: TEMPLATE``, ``no_acknowledge``, ``link_patient``, ``spam``, ``stop``.
The first route taken wins; later matching rules may still add forwards and
acknowledgements unless a rule stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from office.mail.parse import Parsed

__all__ = [
    "ACK_TEMPLATES",
    "Action",
    "Rule",
    "RuleSet",
    "RulesError",
    "load_rules",
    "parse_rules",
]

Test = Callable[[Parsed], bool]

ACK_TEMPLATES_DIR = "mail/ack"
ACK_TEMPLATES = ("general", "records", "referral", "refill", "appointment", "billing")
"""Acknowledgement templates shipped under templates/mail/ack/ (subject and text each)."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ROLE = re.compile(r"^[a-z][a-z_]{1,39}$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MIME = re.compile(r"^[a-z0-9!#$&^_.+-]+/(\*|[a-z0-9!#$&^_.+-]+)$")
_STRING_OPS = ("is", "contains", "contains_any", "matches", "domain", "in_list", "detail")
_BARE_ACTIONS = ("stop", "spam", "link_patient", "no_acknowledge")
_ACTION_KEYS = ("route", "forward", "acknowledge")


class RulesError(ValueError):
    """The rules file cannot be used; `problems` lists each one, naming rule and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a rule does: `kind` is route|person|forward|acknowledge|no_acknowledge|
    link_patient|spam|stop, `value` its argument ("" for the bare ones)."""

    kind: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    category: str
    test: Test
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    lists: Mapping[str, tuple[str, ...]]
    source: str


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file.

    Raises:
        RulesError: every problem in the file, each naming its rule and field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([f"{path}: cannot be read ({exc.strerror})"]) from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str = "<rules>") -> RuleSet:
    """Validate and compile rules from YAML text (see the module docstring)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RulesError([f"{source}: not valid YAML{where}"]) from None
    if not isinstance(document, dict):
        raise RulesError([f"{source}: must be a mapping with 'rules' (and optional 'lists')"])
    problems: list[str] = []
    unknown = sorted(set(document) - {"rules", "lists"})
    if unknown:
        problems.append(f"{source}: unknown top-level keys {', '.join(map(str, unknown))}")
    lists = _lists(document.get("lists") or {}, problems)
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append(f"{source}: 'rules' must be a non-empty list")
        raise RulesError(problems)
    compiler = _Compiler(lists, problems)
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        rule = compiler.rule(index, raw, seen)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RulesError(problems)
    return RuleSet(rules=tuple(rules), lists=lists, source=source)


def _lists(raw: object, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        problems.append("lists: must map a list name to addresses or @domains")
        return {}
    lists: dict[str, tuple[str, ...]] = {}
    for name, entries in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"lists.{name}: a list name is lower case letters, digits, - and _")
            continue
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            problems.append(f"lists.{name}: must be a list of addresses or @domains")
            continue
        for entry in entries:
            if not (_ADDRESS.match(entry) or (entry.startswith("@") and "." in entry)):
                problems.append(f"lists.{name}: {entry!r} is neither an address nor an @domain")
        lists[name] = tuple(entry.lower() for entry in entries)
    return lists


class _Compiler:
    """Turns one rule's YAML into closures, noting each problem with its path."""

    def __init__(self, lists: Mapping[str, tuple[str, ...]], problems: list[str]) -> None:
        self.lists = lists
        self.problems = problems
        self.where = ""

    def fail(self, path: str, problem: str) -> None:
        self.problems.append(f"{self.where}: {path}: {problem}")

    def rule(self, index: int, raw: object, seen: set[str]) -> Rule | None:
        name = raw.get("name") if isinstance(raw, dict) else None
        self.where = f"rule {name!r} (#{index})" if isinstance(name, str) else f"rule #{index}"
        if not isinstance(raw, dict):
            self.fail("rule", "must be a mapping with name, when and do")
            return None
        before = len(self.problems)
        if not isinstance(name, str) or not _NAME.match(name):
            self.fail("name", "required: lower case letters, digits, - and _")
            name = f"rule-{index}"
        elif name in seen:
            self.fail("name", "another rule has this name")
        seen.add(name)
        for key in sorted(set(raw) - {"name", "category", "when", "do", "description"}):
            self.fail(str(key), "unknown field (expected name, category, when, do)")
        category = raw.get("category", name)
        if not isinstance(category, str) or not _NAME.match(category):
            self.fail("category", "lower case letters, digits, - and _")
            category = name
        if "when" not in raw:
            self.fail("when", "required (a test, or a list of tests that must all hold)")
        test = self.test("when", raw.get("when"))
        actions = self.actions(raw.get("do"))
        if len(self.problems) > before:
            return None
        return Rule(name=name, category=category, test=test, actions=actions)

    # --- tests -----------------------------------------------------------------------

    def test(self, path: str, raw: object) -> Test:
        if raw == "always":
            return _always
        if isinstance(raw, list):
            if not raw:
                self.fail(path, "an empty list of tests")
            return _all([self.test(f"{path}[{i}]", item) for i, item in enumerate(raw)])
        if not isinstance(raw, dict) or len(raw) != 1:
            self.fail(path, "a test is a mapping with exactly one key")
            return _never
        [(key, value)] = raw.items()
        where = f"{path}.{key}"
        if key in ("any", "all"):
            if not isinstance(value, list) or not value:
                self.fail(where, "must be a non-empty list of tests")
                return _never
            parts = [self.test(f"{where}[{i}]", item) for i, item in enumerate(value)]
            return _any(parts) if key == "any" else _all(parts)
        if key == "not":
            inner = self.test(where, value)
            return lambda mail: not inner(mail)
        if key in ("from", "to", "subject", "body"):
            return self.field_test(where, key, value)
        if key == "header":
            return self.header_test(where, value)
        if key == "attachment":
            return self.attachment_test(where, value)
        self.fail(
            path,
            f"unknown test {key!r} (from, to, subject, body, header, attachment, any, all, not)",
        )
        return _never

    def field_test(self, where: str, key: str, raw: object) -> Test:
        if isinstance(raw, str):
            raw = {"contains": raw}
        if not isinstance(raw, dict) or len(raw) != 1:
            self.fail(where, f"one of {', '.join(_STRING_OPS)}")
            return _never
        [(op, value)] = raw.items()
        if op not in _STRING_OPS or (op == "detail" and key != "to"):
            self.fail(f"{where}.{op}", "unknown operator")
            return _never
        if op in ("domain", "in_list", "detail") and key in ("subject", "body"):
            self.fail(f"{where}.{op}", f"applies to from and to, not {key}")
            return _never
        match = self.string_match(f"{where}.{op}", op, value)
        if key == "from":
            return lambda mail: (
                match(mail.sender)
                or (mail.original_sender != mail.sender and match(mail.original_sender))
            )
        if key == "to":
            return lambda mail: any(match(address) for address in mail.recipients)
        if key == "subject":
            return lambda mail: match(mail.subject)
        return lambda mail: match(mail.all_text)

    def string_match(self, where: str, op: str, value: object) -> Callable[[str], bool]:
        if op == "contains_any":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) and v for v in value)
            ):
                self.fail(where, "must be a non-empty list of strings")
                return lambda _text: False
            needles = tuple(v.lower() for v in value)
            return lambda text: any(n in text.lower() for n in needles)
        if not isinstance(value, str) or not value:
            self.fail(where, "must be a non-empty string")
            return lambda _text: False
        if op == "matches":
            try:
                pattern = re.compile(value, re.IGNORECASE)
            except re.error as exc:
                self.fail(where, f"invalid regular expression ({exc.msg})")
                return lambda _text: False
            return lambda text: pattern.search(text) is not None
        lowered = value.lower()
        if op == "is":
            return lambda text: text.lower() == lowered
        if op == "contains":
            return lambda text: lowered in text.lower()
        if op == "domain":
            domain = lowered.lstrip("@")
            return lambda text: text.rpartition("@")[2] == domain
        if op == "detail":
            return lambda text: _detail(text) == lowered
        entries = self.lists.get(value)
        if entries is None:
            self.fail(where, f"no list named {value!r} under lists")
            return lambda _text: False
        return lambda text: _listed(text, entries)

    def header_test(self, where: str, raw: object) -> Test:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            self.fail(where, "needs name, and one of present, is, contains, matches")
            return _never
        name = raw["name"].lower()
        checks = {k: v for k, v in raw.items() if k != "name"}
        if not checks:
            return lambda mail: name in mail.headers
        if len(checks) != 1:
            self.fail(where, "one of present, is, contains, matches")
            return _never
        [(op, value)] = checks.items()
        if op == "present":
            if not isinstance(value, bool):
                self.fail(f"{where}.present", "must be true or false")
            return lambda mail: (name in mail.headers) is bool(value)
        if op not in ("is", "contains", "matches", "contains_any"):
            self.fail(f"{where}.{op}", "unknown operator (present, is, contains, matches)")
            return _never
        match = self.string_match(f"{where}.{op}", op, value)
        return lambda mail: any(match(v) for v in mail.headers.get(name, ()))

    def attachment_test(self, where: str, raw: object) -> Test:
        if not isinstance(raw, dict) or len(raw) != 1:
            self.fail(where, "one of type, types")
            return _never
        [(op, value)] = raw.items()
        values = [value] if op == "type" else value
        if op not in ("type", "types") or not isinstance(values, list) or not values:
            self.fail(f"{where}.{op}", "type: MIME type, or types: a list of them")
            return _never
        wanted: list[str] = []
        for item in values:
            if not isinstance(item, str) or not _MIME.match(item.lower()):
                self.fail(f"{where}.{op}", f"{item!r} is not a MIME type such as application/pdf")
            else:
                wanted.append(item.lower())
        return lambda mail: any(
            _mime_matches(attachment.content_type, wanted) for attachment in _attachments(mail)
        )

    # --- actions ----------------------------------------------------------------------

    def actions(self, raw: object) -> tuple[Action, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail("do", "required: a list of actions")
            return ()
        actions: list[Action] = []
        for index, item in enumerate(raw):
            where = f"do[{index}]"
            if isinstance(item, str):
                if item not in _BARE_ACTIONS:
                    self.fail(where, f"unknown action {item!r}")
                else:
                    actions.append(Action(item))
                continue
            if not isinstance(item, dict) or len(item) != 1:
                self.fail(where, "an action is a word or a mapping with one key")
                continue
            [(key, value)] = item.items()
            action = self.action(f"{where}.{key}", key, value)
            if action is not None:
                actions.append(action)
        return tuple(actions)

    def action(self, where: str, key: str, value: Any) -> Action | None:
        if key not in _ACTION_KEYS:
            self.fail(where, f"unknown action (expected {', '.join(_ACTION_KEYS + _BARE_ACTIONS)})")
            return None
        if key == "route":
            if isinstance(value, dict) and set(value) == {"person"}:
                person = value["person"]
                if not isinstance(person, str) or not _ADDRESS.match(person):
                    self.fail(f"{where}.person", "must be a staff email address")
                    return None
                return Action("person", person.lower())
            if not isinstance(value, str) or not _ROLE.match(value):
                self.fail(where, "a role such as front_desk, or {person: staff email}")
                return None
            return Action("route", value)
        if key == "forward":
            if not isinstance(value, str) or not _ADDRESS.match(value):
                self.fail(where, "must be an email address")
                return None
            return Action("forward", value.lower())
        if not isinstance(value, str) or value not in ACK_TEMPLATES:
            self.fail(where, f"a template: one of {', '.join(ACK_TEMPLATES)}")
            return None
        return Action("acknowledge", value)


def _all(tests: list[Test]) -> Test:
    return lambda mail: all(test(mail) for test in tests)


def _any(tests: list[Test]) -> Test:
    return lambda mail: any(test(mail) for test in tests)


def _never(_mail: Parsed) -> bool:
    return False


def _always(_mail: Parsed) -> bool:
    return True


def _detail(address: str) -> str | None:
    """The +subaddress of local+detail@domain (RFC 5233), or None."""
    local = address.partition("@")[0]
    if "+" not in local:
        return None
    return local.partition("+")[2]


def _listed(address: str, entries: tuple[str, ...]) -> bool:
    domain = "@" + address.rpartition("@")[2]
    return any(address == entry or domain == entry for entry in entries)


def _mime_matches(kind: str, wanted: list[str]) -> bool:
    return any(kind == w or (w.endswith("/*") and kind.startswith(w[:-1])) for w in wanted)


def _attachments(mail: Parsed) -> list[Any]:
    found = list(mail.attachments)
    inner = mail.forwarded
    while inner is not None:
        found.extend(inner.attachments)
        inner = inner.forwarded
    return found
