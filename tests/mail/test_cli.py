"""`office mail test-rules` and `office mail list`: what staff run to try rules and see routing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli_mail import mail_app
from app.demo_mail import synthetic_mail
from integrations.mailbox import deliver
from tests.mail.conftest import ADDRESS, NOW, Office

runner = CliRunner()


def corpus(path: Path, n: int = 12) -> None:
    for key, raw in synthetic_mail(n, mailbox_address=ADDRESS, now=NOW):
        deliver(path, key, raw)


def test_test_rules_prints_message_rule_queue_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = tmp_path / "corpus"
    corpus(maildir)
    before = sorted(p.name for p in (maildir / "new").iterdir())
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(mail_app, ["test-rules", "--maildir", str(maildir)])
    assert result.exit_code == 0, result.output
    assert "lab-results" in result.output
    assert "medical_assistant" in result.output
    assert "builtin:delivery-status" in result.output
    assert "per queue:" in result.output
    assert sorted(p.name for p in (maildir / "new").iterdir()) == before
    assert not (tmp_path / "home").exists()


def test_test_rules_reports_each_problem_of_a_broken_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n - {name: a, when: {subject: {matches: '('}}, do: [stop]}\n")
    corpus(tmp_path / "corpus", 2)
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path / "home"))
    result = runner.invoke(
        mail_app, ["test-rules", "--maildir", str(tmp_path / "corpus"), "--rules", str(rules)]
    )
    assert result.exit_code == 1
    assert "rule 'a' (#1): when.subject.matches: invalid regular expression" in result.output


def test_list_shows_routed_mail_per_queue_with_its_rule(
    practice: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    practice.deliver(synthetic_mail(12, mailbox_address=ADDRESS, now=NOW))
    practice.run()
    monkeypatch.setenv("OFFICE_HOME", str(practice.settings.home))
    monkeypatch.setenv("OFFICE_DATABASE_URL", practice.settings.db_url)
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(mail_app, ["list", "--queue", "medical_assistant"])
    assert result.exit_code == 0, result.output
    assert "lab-results" in result.output
    assert "billing" not in result.output
