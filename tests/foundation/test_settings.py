"""Settings fail fast with a message naming the variable, and default sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from office.settings import SettingsError, ensure_secrets, load_settings


def test_defaults_put_sqlite_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("OFFICE_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.db_url == f"sqlite:///{(tmp_path / 'h' / 'office.db').resolve()}"
    assert settings.mailer == "file"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OFFICE_DATABASE_URL", "mysql://root@localhost/office"),
        ("OFFICE_SMTP_PORT", "seventy"),
        ("OFFICE_SMTP_TLS", "sometimes"),
        ("OFFICE_PRACTICE_TIMEZONE", "Mars/Olympus_Mons"),
        ("OFFICE_PAYER_CONCURRENCY", "0"),
    ],
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_plain_postgresql_url_uses_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE_DATABASE_URL", "postgresql://u@db/office")
    assert load_settings().db_url == "postgresql+psycopg://u@db/office"


def test_missing_webhook_secret_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path))
    monkeypatch.delenv("OFFICE_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SettingsError, match="OFFICE_WEBHOOK_SECRET"):
        load_settings().require_webhook_secret()


def test_generated_secrets_are_kept_and_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path))
    for name in ("OFFICE_SECRET_KEY", "OFFICE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    first = load_settings()
    ensure_secrets(first)
    again = load_settings()
    assert again.require_secret_key() == first.require_secret_key()
    assert (tmp_path / "secrets.env").stat().st_mode & 0o077 == 0


def test_cli_reports_a_bad_setting_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE_SMTP_PORT", "99999")
    from app.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["status"])
    assert exit_info.value.code == 1


def test_cli_error_has_no_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"OFFICE_HOME": str(tmp_path), "OFFICE_SMTP_PORT": "99999", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "status"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "OFFICE_SMTP_PORT" in done.stderr


def test_every_command_explains_itself() -> None:
    runner = CliRunner()
    for command in (
        [],
        ["db"],
        ["db", "upgrade"],
        ["demo"],
        ["serve"],
        ["queue"],
        ["inbox"],
        ["inbox", "list"],
        ["inbox", "show"],
        ["inbox", "replay"],
        ["status"],
        ["eligibility", "run"],
        ["eligibility", "check"],
        ["eligibility", "parse"],
        ["reminders", "run"],
        ["reminders", "preview"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert len(result.output.strip()) > 80, command
