"""Settings fail fast with a message naming the variable, and default sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from app.cli import app
from office.settings import (
    SettingsError,
    check_payer_settings,
    ensure_secrets,
    is_loopback_host,
    load_settings,
)


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


LONG = "k" * 32


@pytest.mark.parametrize(
    "variable", ["OFFICE_SECRET_KEY", "OFFICE_SECRET_KEY_PREVIOUS", "OFFICE_WEBHOOK_SECRET"]
)
def test_a_secret_shorter_than_32_bytes_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "k" * 31)
    with pytest.raises(SettingsError, match=f"{variable}: must be at least 32 bytes"):
        load_settings()
    monkeypatch.setenv(variable, "\u00e9" * 16)  # 16 characters, 32 bytes
    load_settings()


def test_a_short_generated_secret_edited_into_the_home_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path))
    for name in ("OFFICE_SECRET_KEY", "OFFICE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "secrets.env").write_text(
        f"OFFICE_SECRET_KEY=short\nOFFICE_WEBHOOK_SECRET={LONG}\n"
    )
    with pytest.raises(
        SettingsError, match=r"OFFICE_SECRET_KEY in .*secrets\.env: must be at least"
    ):
        load_settings()


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"SMTP_HOST": "smtp.example.com", "SMTP_USERNAME": "office"}, True),
        ({"SMTP_HOST": "smtp.example.com", "SMTP_PASSWORD": "pw"}, True),
        ({"SMTP_HOST": "10.0.0.5", "SMTP_USERNAME": "office", "SMTP_PASSWORD": "pw"}, True),
        ({"SMTP_HOST": "smtp.example.com", "SMTP_USERNAME": "o", "SMTP_TLS": "starttls"}, False),
        ({"SMTP_HOST": "smtp.example.com", "SMTP_USERNAME": "o", "SMTP_TLS": "tls"}, False),
        ({"SMTP_HOST": "127.0.0.1", "SMTP_USERNAME": "office"}, False),
        ({"SMTP_HOST": "localhost", "SMTP_USERNAME": "office"}, False),
        ({"SMTP_HOST": "::1", "SMTP_USERNAME": "office"}, False),
        ({"SMTP_HOST": "smtp.example.com"}, False),  # a relay that takes mail without a login
    ],
)
def test_an_smtp_login_in_clear_to_another_machine_is_refused(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], refused: bool
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"OFFICE_{name}", value)
    if refused:
        with pytest.raises(SettingsError, match="OFFICE_SMTP_TLS is none, so OFFICE_SMTP_USERNAME"):
            load_settings()
    else:
        load_settings()


@pytest.mark.parametrize("variable", ["OFFICE_CLEARINGHOUSE_URL", "OFFICE_PUBLIC_URL"])
@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://clearinghouse.example/270", True),
        ("http://192.168.1.20:8080/270", True),
        ("http://localhost.example.com/270", True),
        ("ftp://clearinghouse.example/270", True),
        ("clearinghouse.example/270", True),
        ("https://clearinghouse.example/270", False),
        ("http://127.0.0.1:9400/270", False),
        ("http://localhost:9400/270", False),
        ("http://[::1]:9400/270", False),
    ],
)
def test_http_outside_this_machine_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str, refused: bool
) -> None:
    monkeypatch.setenv(variable, url)
    if refused:
        with pytest.raises(SettingsError, match=variable):
            load_settings()
    else:
        load_settings()


CLEARINGHOUSE = "https://clearinghouse.example/x12/270"


@pytest.mark.parametrize(
    ("own", "credential", "message"),
    [
        ({"url": "https://payer.example/270"}, True, "without an auth_value of its own"),
        ({"url": "https://clearinghouse.example:8443/270"}, True, "without an auth_value"),
        ({"url": "http://payer.example/270"}, False, "payer setting url: http:// is allowed"),
        ({"url": "https://payer.example/270", "auth_value": "its-own"}, True, None),
        ({"url": "https://payer.example/270"}, False, None),
        ({"url": "https://CLEARINGHOUSE.example:443/other"}, True, None),  # same server
        ({"mode": "multipart"}, True, None),  # the clearinghouse's own URL
    ],
)
def test_the_clearinghouse_credential_goes_only_to_the_clearinghouse(
    own: dict[str, object], credential: bool, message: str | None
) -> None:
    def check() -> None:
        check_payer_settings(
            own, clearinghouse_url=CLEARINGHOUSE, clearinghouse_credential=credential
        )

    if message is None:
        check()
    else:
        with pytest.raises(SettingsError, match=message):
            check()


def test_a_credential_without_a_clearinghouse_url_goes_to_no_payer_url() -> None:
    with pytest.raises(SettingsError, match="OFFICE_CLEARINGHOUSE_AUTH is sent only"):
        check_payer_settings(
            {"url": "https://payer.example/270"},
            clearinghouse_url=None,
            clearinghouse_credential=True,
        )


@given(url=st.text(max_size=60), clearinghouse=st.none() | st.text(max_size=40))
def test_payer_urls_of_any_shape_are_judged_without_raising_anything_else(
    url: str, clearinghouse: str | None
) -> None:
    """Only SettingsError, and its message never repeats the URL (it may hold a credential)."""
    message = ""
    try:
        check_payer_settings(
            {"url": url}, clearinghouse_url=clearinghouse, clearinghouse_credential=True
        )
    except SettingsError as exc:
        message = str(exc)
    assert len(url.strip()) < 4 or url not in message


@given(host=st.text(max_size=40))
def test_loopback_is_judged_for_any_host(host: str) -> None:
    assert isinstance(is_loopback_host(host), bool)


def test_link_keys_put_the_current_key_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE_SECRET_KEY", "new-" + LONG)
    assert load_settings().link_keys() == ("new-" + LONG,)
    monkeypatch.setenv("OFFICE_SECRET_KEY_PREVIOUS", "old-" + LONG)
    assert load_settings().link_keys() == ("new-" + LONG, "old-" + LONG)
    monkeypatch.delenv("OFFICE_SECRET_KEY")
    with pytest.raises(SettingsError, match="OFFICE_SECRET_KEY is not set"):
        load_settings(home=Path("/nonexistent-office-home")).link_keys()
