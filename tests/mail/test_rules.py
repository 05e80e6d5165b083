"""Rules: the shipped file loads, every mistake is named by rule and field, and evaluation
follows Sieve's order (first route wins, `stop` ends, `no_acknowledge` and spam veto replies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from office.mail import RulesError, classify, load_rules, parse_mail, parse_rules
from office.mail.parse import Parsed
from office.mail.rules import ACK_TEMPLATES
from office.render import TEMPLATES_DIR, render


def mail(**headers: str) -> Parsed:
    body = headers.pop("body", "hello")
    raw = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    parsed = parse_mail((raw + "\r\n" + body + "\r\n").encode())
    assert isinstance(parsed, Parsed)
    return parsed


def test_the_shipped_rules_load() -> None:
    rules = load_rules(TEMPLATES_DIR / "mail-rules.yaml")
    assert [rule.name for rule in rules.rules][:3] == [
        "marketing-and-spam",
        "fax-gateway",
        "lab-results",
    ]


@pytest.mark.parametrize("name", ACK_TEMPLATES)
def test_every_acknowledgement_template_renders_without_patient_fields(name: str) -> None:
    context = {
        "practice_name": "Riverbend",
        "practice_phone": "+13125550100",
        "mailbox_address": "frontdesk@riverbend.test",
    }
    subject = render(f"mail/ack/{name}.subject.txt.j2", **context)
    text = render(f"mail/ack/{name}.txt.j2", **context)
    assert "Riverbend" in subject
    assert "automatic reply" in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: []", "'rules' must be a non-empty list"),
        ("rules: [{name: a, when: {subject: x}}]", "rule 'a' (#1): do: required"),
        (
            "rules: [{name: a, when: {subject: {matches: '('}}, do: [stop]}]",
            "rule 'a' (#1): when.subject.matches: invalid regular expression",
        ),
        (
            "rules: [{name: a, when: {from: {in_list: labs}}, do: [stop]}]",
            "rule 'a' (#1): when.from.in_list: no list named 'labs'",
        ),
        ("rules: [{name: a, when: {subjekt: x}, do: [stop]}]", "unknown test 'subjekt'"),
        (
            "rules: [{name: a, when: {subject: x}, do: [{route: 'Front Desk'}]}]",
            "rule 'a' (#1): do[0].route: a role",
        ),
        (
            "rules: [{name: a, when: {subject: x}, do: [{acknowledge: poem}]}]",
            "do[0].acknowledge: a template",
        ),
        (
            "rules: [{name: a, when: {subject: x}, do: [{forward: nobody}]}]",
            "do[0].forward: must be an email address",
        ),
        ("rules: [{name: a, when: {subject: x}, do: [dance]}]", "unknown action 'dance'"),
        ("rules: [{when: {subject: x}, do: [stop]}]", "rule #1: name: required"),
        (
            "rules: [{name: a, when: {subject: x}, do: [stop]},"
            " {name: a, when: always, do: [stop]}]",
            "rule 'a' (#2): name: another rule has this name",
        ),
        ("rules: [{name: a, when: {attachment: {type: pdf}}, do: [stop]}]", "is not a MIME type"),
        ("rules: [{name: a, when: {subject: {detail: x}}, do: [stop]}]", "unknown operator"),
        (
            "lists: {labs: [not-an-address]}\nrules: [{name: a, when: always, do: [stop]}]",
            "lists.labs: 'not-an-address' is neither an address nor an @domain",
        ),
        (
            "rules: [{name: a, when: {subject: x}, do: [stop], colour: red}]",
            "rule 'a' (#1): colour: unknown field",
        ),
        ("rules: [{name: a\n", "not valid YAML"),
    ],
)
def test_problems_name_the_rule_and_field(text: str, problem: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(text)
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(
            "rules:\n"
            " - {name: one, when: {subject: {matches: '['}}, do: [stop]}\n"
            " - {name: two, when: {body: x}, do: [{route: 7}]}\n"
        )
    assert len(raised.value.problems) == 2
    assert raised.value.problems[0].startswith("rule 'one' (#1)")
    assert raised.value.problems[1].startswith("rule 'two' (#2)")


@given(st.text(max_size=300))
def test_any_text_either_loads_or_raises_rules_error(text: str) -> None:
    problems: list[str] = []
    try:
        parse_rules(text)
    except RulesError as exc:
        problems = exc.problems or ["<none>"]
    assert "<none>" not in problems


RULES = parse_rules(
    """
lists:
  labs: ["@lab.example"]
rules:
  - name: spam
    when: {header: {name: List-Id}}
    do: [spam, stop]
  - name: labs
    category: lab_result
    when: {any: [{from: {in_list: labs}}, {to: {detail: labs}}]}
    do: [{route: medical_assistant}, {forward: md@clinic.example}, stop]
  - name: billing-person
    when: {subject: {contains_any: [invoice, statement]}}
    do: [{route: {person: dana@clinic.example}}]
  - name: quiet
    when: {not: {header: {name: X-Ack, present: true}}}
    do: [no_acknowledge]
  - name: everyone
    when: always
    do: [{route: front_desk}, {acknowledge: general}]
"""
)


def test_first_route_wins_later_rules_add_and_stop_ends() -> None:
    decision = classify(mail(From="x@lab.example", Subject="invoice"), RULES)
    assert (decision.rule, decision.queue, decision.category) == (
        "labs",
        "medical_assistant",
        "lab_result",
    )
    assert decision.forward_to == ("md@clinic.example",)
    assert decision.matched == ("labs",)

    billing = classify(mail(From="p@example.org", Subject="Your statement", X_Ack="1"), RULES)
    assert billing.queue == "staff:dana@clinic.example"
    assert billing.matched == ("billing-person", "everyone")
    assert billing.acknowledge == "general"
    assert billing.no_acknowledge is False


def test_subaddress_spam_and_no_acknowledge() -> None:
    assert classify(mail(From="a@b.example", To="in+labs@clinic.example"), RULES).rule == "labs"
    spam = classify(mail(From="a@b.example", List_Id="<news.example>"), RULES)
    assert spam.spam
    assert spam.acknowledge is None
    quiet = classify(mail(From="a@b.example"), RULES)
    assert quiet.no_acknowledge
    assert quiet.actions == ("route",)


def test_forwarded_mail_matches_its_original_sender() -> None:
    raw = (
        b"From: staff@clinic.example\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n"
        b"fyi\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: results@lab.example\r\n"
        b"Subject: report\r\n\r\nresult\r\n--b--\r\n"
    )
    parsed = parse_mail(raw)
    assert isinstance(parsed, Parsed)
    assert classify(parsed, RULES).rule == "labs"


def test_a_rules_file_that_cannot_be_read_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "missing.yaml")
