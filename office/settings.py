"""officeflows settings: one class, read from `OFFICE_*` environment variables.

Built at the edge (the CLI, the web app factory, a flow's first task) and passed
down; never at import time. A wrong value fails at once with a message naming
the variable.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from office.contracts.mailbox import MailboxSettings
from office.home import make_private_dir, write_private

__all__ = [
    "MIN_SECRET_BYTES",
    "Settings",
    "SettingsError",
    "check_payer_settings",
    "is_loopback_host",
    "load_settings",
    "require_secure_url",
]

# HMAC keys shorter than SHA-256's own block of entropy are guessable offline from one token.
MIN_SECRET_BYTES = 32


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
    secret_key_previous: SecretStr | None = Field(
        default=None, description="The link key before the last rotation: its links still work"
    )
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
    smtp_connections: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Connections a reminder batch sends over at once; at most this many "
        "messages are in doubt after a crash",
    )
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

    # Staff board
    staff_idle_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Minutes unused before a board session ends"
    )
    staff_session_hours: int = Field(
        default=12, ge=1, le=24 * 7, description="Hours a board session lasts, however used"
    )
    staff_link_hours: int = Field(
        default=48, ge=1, le=24 * 14, description="Hours a one-time set-password link works"
    )

    # HL7 v2 over MLLP (office serve's listener)
    mllp_host: str = Field(default="127.0.0.1", description="Address the HL7 listener binds")
    mllp_port: int = Field(
        default=2575, ge=0, le=65535, description="Port of the HL7 listener (0: any free port)"
    )

    # Eligibility
    clearinghouse_url: str | None = None
    clearinghouse_auth_header: str = "Authorization"
    clearinghouse_auth: SecretStr | None = None
    payer_concurrency: int = Field(default=10, ge=1, le=500)
    payer_rate_per_second: float = Field(default=20.0, gt=0)
    deductible_alert_threshold: int = Field(default=1000, ge=0)

    # Work queue
    queue_note_kinds_as_tasks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Note kinds worked as tasks, comma-separated (plan_ending, high_deductible)",
    )

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

    @field_validator("secret_key", "secret_key_previous", "webhook_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            _require_long(value.get_secret_value())
        return value

    @field_validator("clearinghouse_url", "public_url")
    @classmethod
    def _secure_url(cls, value: str | None) -> str | None:
        if value:
            _require_secure(value)
        return value

    @model_validator(mode="after")
    def _smtp_login_encrypted(self) -> Settings:
        """A login over a cleartext connection to another machine gives the password away."""
        login = self.smtp_username or (self.smtp_password and self.smtp_password.get_secret_value())
        if login and self.smtp_tls == "none" and not is_loopback_host(self.smtp_host):
            raise ValueError(
                "OFFICE_SMTP_TLS is none, so OFFICE_SMTP_USERNAME and OFFICE_SMTP_PASSWORD "
                "would cross the network in clear to OFFICE_SMTP_HOST; set OFFICE_SMTP_TLS "
                "to starttls or tls"
            )
        return self

    @field_validator("queue_note_kinds_as_tasks", mode="before")
    @classmethod
    def _note_kinds(cls, value: object) -> object:
        from office.workqueue.kinds import note_kinds, unknown_notes

        names = (
            [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value
        )
        if isinstance(names, list):
            unknown = unknown_notes(str(name) for name in names)
            if unknown:
                known = ", ".join(sorted(note_kinds()))
                raise ValueError(f"{', '.join(unknown)} is not a note kind (note kinds: {known})")
        return names

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

    def link_keys(self) -> tuple[str, ...]:
        """The keys patient links verify with, current first; a new link is signed with the first.

        During a rotation OFFICE_SECRET_KEY_PREVIOUS keeps the links already sent working
        until they expire; then unset it.
        """
        current = self.require_secret_key()
        previous = self.secret_key_previous
        if previous is None or not previous.get_secret_value():
            return (current,)
        return (current, previous.get_secret_value())

    def require_webhook_secret(self) -> str:
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise SettingsError("OFFICE_WEBHOOK_SECRET is not set: it signs inbound webhooks")
        return self.webhook_secret.get_secret_value()


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): traffic never leaves."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _require_long(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"must be at least {MIN_SECRET_BYTES} bytes; make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _require_secure(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an https:// URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("http:// is allowed only to this machine (loopback); use https://")


def require_secure_url(url: str, variable: str) -> str:
    """`url`, if patient data may be sent to it: https, or http to a loopback host.

    Raises:
        SettingsError: Naming `variable`, never the URL (it may carry a credential).
    """
    try:
        _require_secure(url)
    except ValueError as exc:
        raise SettingsError(f"{variable}: {exc}") from None
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or ""), port


def check_payer_settings(
    own: Mapping[str, object], *, clearinghouse_url: str | None, clearinghouse_credential: bool
) -> None:
    """Refuse a payer row's own settings that would leak what the practice sends its payers.

    The row's `url` must be secure (`require_secure_url`); and when it points away from
    OFFICE_CLEARINGHOUSE_URL's server, the row must bring its own `auth_value`, since the
    practice's OFFICE_CLEARINGHOUSE_AUTH goes only to the clearinghouse. Call it where a
    payer's settings are merged over the clearinghouse's.

    Raises:
        SettingsError: Naming the setting at fault, never its value.
    """
    url = own.get("url")
    if not isinstance(url, str) or not url:
        return
    require_secure_url(url, "payer setting url")
    if not clearinghouse_credential or "auth_value" in own:
        return
    if clearinghouse_url is None or _origin(url) != _origin(clearinghouse_url):
        raise SettingsError(
            "payer setting url points away from OFFICE_CLEARINGHOUSE_URL without an auth_value "
            "of its own; OFFICE_CLEARINGHOUSE_AUTH is sent only to the clearinghouse"
        )


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
    for name in ("OFFICE_SECRET_KEY", "OFFICE_WEBHOOK_SECRET"):
        if name in stored:
            try:
                _require_long(stored[name])
            except ValueError as exc:
                raise SettingsError(f"{name} in {settings.home / 'secrets.env'}: {exc}") from None
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
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule over several variables names them itself
            problems.append(message)
            continue
        problems.append(f"OFFICE_{str(error['loc'][0]).upper()}: {message}")
    return "; ".join(problems)
