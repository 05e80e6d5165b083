"""Inbound mailboxes: each implements `office.contracts.mailbox.Mailbox`.

`open_mailbox` builds the one a mailbox's settings name: "maildir" (the embedded
default, `OFFICE_HOME/mail/<name>`) or "imap".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.mailbox.imap import ImapMailbox
from integrations.mailbox.maildir import MaildirMailbox, deliver
from integrations.mailbox.watch import watch_mailboxes

if TYPE_CHECKING:
    from office.contracts.mailbox import Mailbox, MailboxSettings
    from office.settings import Settings

__all__ = ["ImapMailbox", "MaildirMailbox", "deliver", "open_mailbox", "watch_mailboxes"]


def open_mailbox(box: MailboxSettings, settings: Settings) -> Mailbox:
    """The adapter for one configured mailbox (not yet connected: use it in `with`)."""
    if box.kind == "imap":
        return ImapMailbox(box)
    return MaildirMailbox(box.name, settings.mailbox_path(box), done_folder=box.done_folder)
