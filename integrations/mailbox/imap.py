"""IMAP mailboxes over `imapclient`: IMAPS or STARTTLS, read by UID, IDLE where offered.

Certificates are verified against the system store, or against the CA file the
mailbox's settings name. Messages are fetched with BODY.PEEK[] so reading marks
nothing seen (another client's \\Seen flag never hides mail from us either: we
read by UID, not by flags). A routed message is moved to the done folder (MOVE,
or COPY + \\Deleted + UID EXPUNGE) or given a keyword.

A dropped connection is reopened once per operation, and the operation repeated:
fetching by UID and moving or flagging are idempotent. A second failure is a
`MailboxRetryableError`; a refused login, an untrusted certificate or a missing
folder is a `MailboxFinalError`.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import (
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from office.contracts.mailbox import (
    Fetched,
    FetchedBatch,
    MailboxFinalError,
    MailboxRetryableError,
    MailboxSettings,
    Position,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ImapMailbox"]

_T = TypeVar("_T")
_DROPPED = (IMAPClientAbortError, imaplib.IMAP4.abort, socket.timeout, ConnectionError, EOFError)


class ImapMailbox:
    """One IMAP mailbox; a `with` block holds one logged-in connection with the folder selected.

    Args:
        settings: The mailbox's settings (host, port, security, login, folders).
        ssl_context: Trust settings; by default the system store, or `settings.ca_file`.
    """

    def __init__(self, settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None):
        settings.require_imap()
        self.name = settings.name
        self.settings = settings
        self._context = ssl_context
        self._client: IMAPClient | None = None
        self.validity = 0
        self.capabilities: frozenset[bytes] = frozenset()

    def __enter__(self) -> ImapMailbox:
        self._connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(polite=True)

    # --- the contract --------------------------------------------------------------------

    def fetch(self, after: Position | None, limit: int) -> FetchedBatch:
        """Up to `limit` messages with UIDs after the position, oldest first."""
        return self._retrying("fetch", lambda client: self._fetch(client, after, limit))

    def finish(self, refs: Sequence[str]) -> None:
        """Move or flag these messages; refs from another UIDVALIDITY are left alone."""
        self._retrying("finish", lambda client: self._finish(client, refs))

    def wait(self, timeout: float) -> bool:
        """IDLE up to `timeout` seconds; True when the server announced new messages."""
        if b"IDLE" not in self.capabilities:
            return False
        return self._retrying("idle", lambda client: self._idle(client, timeout))

    # --- operations ------------------------------------------------------------------------

    def _fetch(self, client: IMAPClient, after: Position | None, limit: int) -> FetchedBatch:
        start = after.last_uid + 1 if after is not None and after.validity == self.validity else 1
        criteria: list[Any] = ["UID", f"{start}:*"]
        if self.settings.after == "keyword":
            criteria += ["UNKEYWORD", self.settings.keyword]
        # "n:*" always includes the highest UID, even below n: filter it out.
        uids = sorted(uid for uid in client.search(criteria) if uid >= start)
        chosen = uids[:limit]
        messages: list[Fetched] = []
        if chosen:
            data = client.fetch(chosen, ["BODY.PEEK[]"])
            for uid in chosen:
                body = data.get(uid, {}).get(b"BODY[]")
                if isinstance(body, bytes):  # expunged meanwhile: gone, nothing to store
                    messages.append(Fetched(ref=f"{self.validity}/{uid}", uid=uid, raw=body))
        return FetchedBatch(validity=self.validity, messages=messages, more=len(uids) > limit)

    def _finish(self, client: IMAPClient, refs: Sequence[str]) -> None:
        uids = []
        for ref in refs:
            validity, _, uid = ref.partition("/")
            if validity == str(self.validity) and uid.isdigit():
                uids.append(int(uid))
        if not uids:
            return
        if self.settings.after == "keyword":
            client.add_flags(uids, [self.settings.keyword], silent=True)
        elif b"MOVE" in self.capabilities:
            client.move(uids, self.settings.done_folder)
        else:
            client.copy(uids, self.settings.done_folder)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            if b"UIDPLUS" in self.capabilities:
                client.uid_expunge(uids)
            else:
                client.expunge()

    def _idle(self, client: IMAPClient, timeout: float) -> bool:
        # What arrived since the last command is reported by a NOOP; IDLE reports what comes next.
        _text, pending = client.noop()
        if _announced(pending):
            return True
        client.idle()
        try:
            responses = client.idle_check(timeout=timeout)
        finally:
            client.idle_done()
        return _announced(responses)

    # --- the connection ----------------------------------------------------------------------

    def _retrying(self, phase: str, operation: Callable[[IMAPClient], _T]) -> _T:
        """Run an operation; reconnect once and repeat it if the connection dropped."""
        for attempt in (1, 2):
            client = self._client or self._connect()
            try:
                return operation(client)
            except _DROPPED as exc:
                self._close(polite=False)
                if attempt == 2:
                    raise MailboxRetryableError(
                        f"mailbox {self.name}: the IMAP connection dropped during {phase}, twice"
                    ) from exc
            except ssl.SSLError as exc:
                self._close(polite=False)
                if attempt == 2:
                    raise MailboxRetryableError(
                        f"mailbox {self.name}: TLS failed during {phase}"
                    ) from exc
            except OSError as exc:
                self._close(polite=False)
                if attempt == 2:
                    raise MailboxRetryableError(
                        f"mailbox {self.name}: network error during {phase}"
                    ) from exc
            except IMAPClientError as exc:
                self._close(polite=False)
                raise MailboxRetryableError(
                    f"mailbox {self.name}: the IMAP server refused the {phase} command"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> IMAPClient:
        box = self.settings
        context = self._context or ssl.create_default_context(
            cafile=str(box.ca_file) if box.ca_file else None
        )
        implicit = box.security == "tls"
        port = box.port or (993 if implicit else 143)
        client: IMAPClient | None = None
        try:
            client = IMAPClient(
                str(box.host), port=port, ssl=implicit, ssl_context=context, timeout=box.timeout
            )
            if not implicit:
                client.starttls(context)
            assert box.password is not None  # require_imap
            client.login(str(box.username), box.password.get_secret_value())
            self.capabilities = frozenset(client.capabilities())
            selected = client.select_folder(box.folder)
            self.validity = int(selected.get(b"UIDVALIDITY", 0))
            if box.after == "move" and not client.folder_exists(box.done_folder):
                client.create_folder(box.done_folder)
        except ssl.SSLCertVerificationError as exc:
            _shut(client)
            raise MailboxFinalError(
                f"mailbox {self.name}: the IMAP server's certificate is not trusted"
            ) from exc
        except LoginError as exc:
            _shut(client)
            raise MailboxFinalError(f"mailbox {self.name}: the IMAP login was refused") from exc
        except (*_DROPPED, ssl.SSLError, OSError) as exc:
            _shut(client)
            raise MailboxRetryableError(
                f"mailbox {self.name}: cannot connect to the IMAP server"
            ) from exc
        except IMAPClientError as exc:
            _shut(client)
            raise MailboxFinalError(
                f"mailbox {self.name}: the IMAP server refused the folder or TLS set-up"
            ) from exc
        self._client = client
        return client

    def _close(self, *, polite: bool) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if polite:
            try:
                client.logout()
                return
            except (IMAPClientError, *_DROPPED, OSError):
                pass  # the session is over either way; the socket is closed below
        _shut(client)


def _announced(responses: Sequence[Any]) -> bool:
    return any(
        isinstance(item, tuple) and len(item) > 1 and item[1] in (b"EXISTS", b"RECENT")
        for item in responses
    )


def _shut(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.shutdown()
    except (IMAPClientError, OSError):
        return
