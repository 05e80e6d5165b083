"""The inbound mailbox contract: a `Mailbox`, its settings, and its error tree.

A mailbox hands over raw RFC 822 bytes and is told, afterwards, which of them
were stored and routed, so it can move or flag them on the server. It never
decides anything: `office.mail` stores first, and only then calls `finish`.

Errors are split by what the caller may do next::

    MailboxError
    ├── MailboxRetryableError   the connection failed or dropped, the server said
    │                           BYE or timed out: nothing was lost, run again later
    └── MailboxFinalError       login refused, certificate not trusted, folder
                                missing: a person must fix the settings

Messages name the mailbox and the phase, never addresses, subjects or bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Fetched",
    "FetchedBatch",
    "Mailbox",
    "MailboxError",
    "MailboxFinalError",
    "MailboxRetryableError",
    "MailboxSettings",
    "Position",
]


class MailboxError(Exception):
    """Root of every mailbox adapter failure; vendor exceptions are chained as __cause__."""


class MailboxRetryableError(MailboxError):
    """The server could not be reached or went away; running again later is safe."""


class MailboxFinalError(MailboxError):
    """The settings are wrong (login, certificate, folder); retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Position:
    """How far a mailbox has been read: IMAP's UIDVALIDITY and the last UID stored."""

    validity: int
    last_uid: int


@dataclass(frozen=True, slots=True)
class Fetched:
    """One message as the server holds it.

    Attributes:
        ref: Where it is on the server, in the adapter's own terms (an IMAP
            "validity/uid", a Maildir file key); passed back to `finish`.
        uid: The IMAP UID, which advances the stored position; None for Maildir.
        raw: The message's bytes, exactly as the server gave them.
    """

    ref: str
    uid: int | None
    raw: bytes


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """Messages after a position, oldest first, and the validity they belong to."""

    validity: int
    messages: Sequence[Fetched]
    more: bool  # the server holds more after these


@runtime_checkable
class Mailbox(Protocol):
    """One mailbox; a `with` block is one connection."""

    name: str

    def __enter__(self) -> Mailbox: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def fetch(self, after: Position | None, limit: int) -> FetchedBatch:
        """Up to `limit` messages not yet finished, after `after` where the server has UIDs.

        A changed UIDVALIDITY starts again from the first message: the caller's
        dedupe recognises what it already stored.

        Raises:
            MailboxRetryableError, MailboxFinalError
        """
        ...

    def finish(self, refs: Sequence[str]) -> None:
        """Move or flag these messages as routed; refs already finished are ignored.

        Raises:
            MailboxRetryableError, MailboxFinalError
        """
        ...

    def wait(self, timeout: float) -> bool:
        """Block until the server announces new mail (IMAP IDLE) or `timeout` passes.

        Returns True when something arrived; False on timeout, or at once when
        the server cannot announce mail (the caller's periodic sweep covers it).
        """
        ...


class MailboxSettings(BaseModel):
    """One mailbox the practice reads: `OFFICE_MAILBOXES` is a JSON list of these.

    A Maildir mailbox needs only `name` and `address`; it lives in
    `OFFICE_HOME/mail/<name>` unless `path` says otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="front-desk, billing")
    address: str = Field(description="The address mail to this box is sent to")
    kind: Literal["maildir", "imap"] = "maildir"
    path: Path | None = Field(default=None, description="Maildir location (maildir)")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["tls", "starttls"] = "tls"
    ca_file: Path | None = Field(
        default=None, description="Trust this CA instead of the system store (imap)"
    )
    username: str | None = None
    password: SecretStr | None = None
    folder: str = "INBOX"
    after: Literal["move", "keyword"] = Field(
        default="move", description="What happens on the server to a routed message"
    )
    done_folder: str = "Routed"
    keyword: str = Field(default="$OfficeRouted", pattern=r"^\$?[A-Za-z0-9_]{1,40}$")
    timeout: float = Field(default=30.0, gt=0, le=600)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        local, at, domain = value.strip().partition("@")
        if not (local and at and "." in domain):
            raise ValueError("must be an email address such as frontdesk@clinic.example")
        return value.strip().lower()

    def require_imap(self) -> None:
        """Refuse an IMAP mailbox missing what a connection needs."""
        missing = [name for name in ("host", "username", "password") if not getattr(self, name)]
        if self.kind == "imap" and missing:
            raise ValueError(f"mailbox {self.name!r} (imap) needs {', '.join(missing)}")
