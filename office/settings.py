"""officeflows settings: one class, read from `OFFICE_*` environment variables.

Built at the edge (the CLI, the web app factory, a flow's first task) and passed
down; never at import time. A wrong value fails at once with a message naming
the variable.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from office.contracts.mailbox import MailboxSettings
from office.home import make_private_dir, write_private

__all__ = ["Settings", "SettingsError", "load_settings"]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Everything officeflows reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="OFFICE_", extra="ignore")

    home: Path = Field(
        default=Path(".office"), description="SQLite database, outboxes, demo mailbox"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to SQLite under OFFICE_HOME"
    )
    secret_key: SecretStr | None = Field(default=None, description="Signs patient links")
    webhook_secret: SecretStr | None = Field(default=None, description="Signs inbound webhooks")
    public_url: str = Field(
        default="http://127.0.0.1:8400", description="Base URL patients' links point at"
    )
    practice_timezone: str = Field(
        default="America/Chicago", description="IANA zone schedules are written in"
    )
    prefect_start_timeout: float = Field(
        default=120, gt=0, description="Seconds to wait for a Prefect server this machine starts"
    )
    prefect_server_wrapper: str = Field(
        default="", description="Command words put before `prefect server start`, e.g. nice -n 10"
    )

    # Mail and SMS
    mailer: Literal["file", "smtp"] = "file"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    mail_from: str = "reminders@officeflows.local"
    sms: Literal["file", "twilio"] = "file"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None

    # Inbound mail
    mailboxes: list[MailboxSettings] = Field(
        default_factory=list,
        description="JSON list of mailboxes; unset: one Maildir box front-desk in OFFICE_HOME/mail",
    )
    mail_rules: Path | None = Field(
        default=None, description="Routing rules file; default templates/mail-rules.yaml"
    )
    mail_own_addresses: list[str] = Field(
        default_factory=list, description="More of the practice's addresses, never acknowledged"
    )
    mail_ack_period_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="Hours between acknowledgements to one sender"
    )

    # Eligibility
    clearinghouse_url: str | None = None
    clearinghouse_auth_header: str = "Authorization"
    clearinghouse_auth: SecretStr | None = None
    payer_concurrency: int = Field(default=10, ge=1, le=500)
    payer_rate_per_second: float = Field(default=20.0, gt=0)
    deductible_alert_threshold: int = Field(default=1000, ge=0)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("practice_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not an IANA time zone such as America/Chicago") from exc
        return value

    @property
    def db_url(self) -> str:
        """The database URL in force: the explicit one, else SQLite under home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'office.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def inbound_mailboxes(self) -> list[MailboxSettings]:
        """The mailboxes read, in order: OFFICE_MAILBOXES, else the embedded Maildir one."""
        if self.mailboxes:
            return list(self.mailboxes)
        domain = self.mail_from.rpartition("@")[2] or "officeflows.local"
        return [MailboxSettings(name="front-desk", address=f"frontdesk@{domain}")]

    def mailbox_path(self, mailbox: MailboxSettings) -> Path:
        """Where a Maildir mailbox lives: its own path, else OFFICE_HOME/mail/<name>."""
        return mailbox.path or self.home / "mail" / mailbox.name

    @property
    def practice_addresses(self) -> frozenset[str]:
        """The practice's own addresses: acknowledging them would start a loop."""
        own = {box.address for box in self.inbound_mailboxes}
        own.add(self.mail_from.strip().lower())
        own.update(address.strip().lower() for address in self.mail_own_addresses)
        return frozenset(own)

    def require_secret_key(self) -> str:
        if self.secret_key is None or not self.secret_key.get_secret_value():
            raise SettingsError("OFFICE_SECRET_KEY is not set: it signs patient links")
        return self.secret_key.get_secret_value()

    def require_webhook_secret(self) -> str:
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise SettingsError("OFFICE_WEBHOOK_SECRET is not set: it signs inbound webhooks")
        return self.webhook_secret.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and the keys file under OFFICE_HOME).

    `office demo` writes generated secrets to `OFFICE_HOME/secrets.env`; they are
    used only where the environment does not set the variable.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    stored = _read_secrets(settings.home)
    if settings.secret_key is None and "OFFICE_SECRET_KEY" in stored:
        settings.secret_key = SecretStr(stored["OFFICE_SECRET_KEY"])
    if settings.webhook_secret is None and "OFFICE_WEBHOOK_SECRET" in stored:
        settings.webhook_secret = SecretStr(stored["OFFICE_WEBHOOK_SECRET"])
    return settings


def ensure_secrets(settings: Settings) -> None:
    """Generate link and webhook secrets into OFFICE_HOME if none are configured."""
    stored = _read_secrets(settings.home)
    changed = False
    for name in ("OFFICE_SECRET_KEY", "OFFICE_WEBHOOK_SECRET"):
        if name not in stored:
            stored[name] = secrets.token_urlsafe(32)
            changed = True
    make_private_dir(settings.home)
    if changed:
        text = "".join(f"{k}={v}\n" for k, v in sorted(stored.items()))
        write_private(settings.home / "secrets.env", text.encode())
    if settings.secret_key is None:
        settings.secret_key = SecretStr(stored["OFFICE_SECRET_KEY"])
    if settings.webhook_secret is None:
        settings.webhook_secret = SecretStr(stored["OFFICE_WEBHOOK_SECRET"])


def _read_secrets(home: Path) -> dict[str, str]:
    path = home / "secrets.env"
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"OFFICE_{field.upper()}: {message}")
    return "; ".join(problems)
