"""The embedded mailbox: a Maildir on this machine (`OFFICE_HOME/mail/<mailbox>` by default).

Messages are read from `new/` and `cur/`, never marked seen; once routed they are
moved, flags kept, into the Maildir++ folder `.<done_folder>/cur/`, so a file
left behind is one not yet decided. Renames within one file system are atomic:
a message is in exactly one place at any moment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from office.contracts.mailbox import (
    Fetched,
    FetchedBatch,
    MailboxFinalError,
    MailboxRetryableError,
    Position,
)
from office.home import PRIVATE_FILE_MODE, make_private_dir

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MaildirMailbox", "deliver"]

_INFO = ":2,"


class MaildirMailbox:
    """A Maildir mailbox; `with` makes its folders if they are missing."""

    def __init__(self, name: str, path: Path, *, done_folder: str = "Routed") -> None:
        self.name = name
        self.path = Path(path)
        self.done = self.path / f".{done_folder}"
        self._files: dict[str, Path] | None = None
        self._order: list[str] = []
        self._cursor = 0

    def __enter__(self) -> MaildirMailbox:
        try:
            for folder in (self.path, self.done):
                for sub in ("new", "cur", "tmp"):
                    make_private_dir(folder / sub)
        except OSError as exc:
            raise _error(exc, f"mailbox {self.name}: cannot open the Maildir") from exc
        self._files, self._order, self._cursor = None, [], 0
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._files = None

    def fetch(self, after: Position | None, limit: int) -> FetchedBatch:
        """The next `limit` messages still in the box, oldest name first, in this session."""
        files = self._listing()
        messages: list[Fetched] = []
        while self._cursor < len(self._order) and len(messages) < limit:
            key = self._order[self._cursor]
            self._cursor += 1
            try:
                raw = files[key].read_bytes()
            except FileNotFoundError:
                continue  # finished by another run since the listing
            except OSError as exc:
                raise _error(exc, f"mailbox {self.name}: cannot read a message") from exc
            messages.append(Fetched(ref=key, uid=None, raw=raw))
        return FetchedBatch(validity=0, messages=messages, more=self._cursor < len(self._order))

    def finish(self, refs: Sequence[str]) -> None:
        """Move these messages into the done folder; ones already moved are skipped."""
        files = self._listing()
        for key in refs:
            source = files.get(key) or self._find(key)
            if source is None:
                continue
            info = source.name[len(key) :] if source.name.startswith(key) else ""
            try:
                os.replace(source, self.done / "cur" / f"{key}{info or _INFO}")
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _error(exc, f"mailbox {self.name}: cannot move a routed message") from exc

    def wait(self, timeout: float) -> bool:
        """A Maildir announces nothing; the scheduled run reads it."""
        return False

    def _listing(self) -> dict[str, Path]:
        if self._files is None:
            files: dict[str, Path] = {}
            try:
                for sub in ("new", "cur"):
                    with os.scandir(self.path / sub) as entries:
                        for entry in entries:
                            if entry.is_file() and not entry.name.startswith("."):
                                files[entry.name.split(_INFO, 1)[0]] = Path(entry.path)
            except OSError as exc:
                raise _error(exc, f"mailbox {self.name}: cannot list the Maildir") from exc
            self._files = files
            self._order = sorted(files)
            self._cursor = 0
        return self._files

    def _find(self, key: str) -> Path | None:
        for sub in ("new", "cur"):
            for candidate in (self.path / sub).glob(f"{key}*"):
                if candidate.name.split(_INFO, 1)[0] == key:
                    return candidate
        return None


def deliver(path: Path, key: str, raw: bytes) -> Path:
    """Deliver one message into a Maildir's new/ the way an MDA does: tmp/, then rename.

    Folders this makes are 0700 and the message 0600 from its first byte: mail holds PHI.
    """
    for sub in ("new", "cur", "tmp"):
        make_private_dir(path / sub)
    staging = path / "tmp" / key
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(raw)
    target = path / "new" / key
    os.replace(staging, target)
    return target


def _error(exc: OSError, message: str) -> MailboxFinalError | MailboxRetryableError:
    if isinstance(exc, PermissionError | NotADirectoryError):
        return MailboxFinalError(message)
    return MailboxRetryableError(message)
