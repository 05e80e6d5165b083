"""The mailbox contract, run over every adapter: Maildir on disk and IMAP against a real Dovecot.

One suite for both, so neither drifts: fetch order and bytes, filing after routing,
idempotent finishing, positions by UID, announcements (IDLE), and the error tree.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integrations.mailbox import ImapMailbox, MaildirMailbox, deliver, watch_mailboxes
from office.contracts.mailbox import (
    Mailbox,
    MailboxFinalError,
    MailboxRetryableError,
    Position,
)
from office.settings import Settings
from testkit.dovecot import DovecotServer


def _message(n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: frontdesk@riverbend.test\r\n"
        f"Subject: message {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


class Box:
    """One adapter under test: how to put mail in, open it, and see what is left."""

    def __init__(
        self,
        put: Callable[[bytes], None],
        open_: Callable[[], Mailbox],
        left: Callable[[], int],
        filed: Callable[[], int],
        announces: bool,
    ) -> None:
        self.put, self.open, self.left, self.filed, self.announces = (
            put,
            open_,
            left,
            filed,
            announces,
        )


@pytest.fixture(params=["maildir", "imap"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Box]:
    if request.param == "maildir":
        path = tmp_path / "maildir"
        counter = iter(range(10**6))
        yield Box(
            lambda raw: deliver(path, f"{1000 + next(counter):08d}.test", raw),
            lambda: MaildirMailbox("front-desk", path),
            lambda: sum(1 for sub in ("new", "cur") for _ in (path / sub).glob("*")),
            lambda: sum(1 for _ in (path / ".Routed" / "cur").glob("*")),
            announces=False,
        )
        return
    dovecot: DovecotServer = request.getfixturevalue("dovecot")
    settings = dovecot.mailbox_settings("front-desk")
    yield Box(
        lambda raw: dovecot.append(raw),
        lambda: ImapMailbox(settings),
        dovecot.count,
        lambda: dovecot.count("Routed"),
        announces=True,
    )


def test_fetches_every_message_oldest_first_byte_for_byte(box: Box) -> None:
    for n in range(5):
        box.put(_message(n))
    with box.open() as mailbox:
        first = mailbox.fetch(None, 3)
        second = mailbox.fetch(_after(first), 3)
    raws = [m.raw.replace(b"\r\n", b"\n") for m in (*first.messages, *second.messages)]
    assert raws == [_message(n).replace(b"\r\n", b"\n") for n in range(5)]
    assert first.more
    assert not second.more


def test_finish_files_messages_once_and_ignores_repeats(box: Box) -> None:
    for n in range(3):
        box.put(_message(n))
    with box.open() as mailbox:
        batch = mailbox.fetch(None, 10)
        refs = [m.ref for m in batch.messages]
        mailbox.finish(refs[:2])
        mailbox.finish(refs[:2])  # again: harmless
    assert (box.left(), box.filed()) == (1, 2)
    with box.open() as mailbox:
        rest = mailbox.fetch(None, 10)
    assert [m.raw.count(b"message 2") for m in rest.messages] == [1]


def test_announces_new_mail_where_the_server_can(box: Box) -> None:
    with box.open() as mailbox:
        box.put(_message(1))
        assert mailbox.wait(30) is box.announces


def _after(batch: object) -> Position | None:
    messages = batch.messages  # type: ignore[attr-defined]
    uids = [m.uid for m in messages if m.uid is not None]
    return Position(batch.validity, max(uids)) if uids else None  # type: ignore[attr-defined]


# --- IMAP only ------------------------------------------------------------------------------


def test_imap_reads_after_the_stored_position_and_peeks(dovecot: DovecotServer) -> None:
    dovecot.append(*(_message(n) for n in range(4)))
    settings = dovecot.mailbox_settings("front-desk")
    with ImapMailbox(settings) as mailbox:
        everything = mailbox.fetch(None, 10)
        later = mailbox.fetch(Position(everything.validity, everything.messages[1].uid or 0), 10)
        stale = mailbox.fetch(Position(everything.validity + 1, 10**6), 10)
    assert [m.uid for m in later.messages] == [m.uid for m in everything.messages[2:]]
    assert len(stale.messages) == 4  # another UIDVALIDITY: start over, dedupe decides
    client = dovecot.client()
    try:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["SEEN"]) == []  # reading marked nothing seen
    finally:
        client.logout()


def test_imap_keyword_mode_flags_instead_of_moving(dovecot: DovecotServer) -> None:
    dovecot.append(_message(1), _message(2))
    settings = dovecot.mailbox_settings("front-desk", after="keyword")
    with ImapMailbox(settings) as mailbox:
        batch = mailbox.fetch(None, 10)
        mailbox.finish([batch.messages[0].ref])
    with ImapMailbox(settings) as mailbox:
        assert [m.raw.count(b"message 2") for m in mailbox.fetch(None, 10).messages] == [1]
    assert dovecot.count() == 2


def test_imap_starttls_works_and_login_failures_are_final(dovecot: DovecotServer) -> None:
    starttls = dovecot.mailbox_settings("front-desk", security="starttls", port=dovecot.imap_port)
    dovecot.append(_message(1))
    with ImapMailbox(starttls) as mailbox:
        assert len(mailbox.fetch(None, 10).messages) == 1
    wrong = dovecot.mailbox_settings("front-desk", password="wrong")
    with pytest.raises(MailboxFinalError, match="login was refused"), ImapMailbox(wrong):
        pass


def test_imap_certificate_is_verified_unless_a_ca_file_is_named(dovecot: DovecotServer) -> None:
    untrusted = dovecot.mailbox_settings("front-desk", ca_file=None)
    with (
        pytest.raises(MailboxFinalError, match="certificate is not trusted"),
        ImapMailbox(untrusted),
    ):
        pass


def test_imap_server_down_is_retryable(dovecot: DovecotServer) -> None:
    settings = dovecot.mailbox_settings("front-desk")
    dovecot.stop()
    with pytest.raises(MailboxRetryableError, match="cannot connect"), ImapMailbox(settings):
        pass


def test_imap_reconnects_after_a_restart_between_operations(dovecot: DovecotServer) -> None:
    dovecot.append(*(_message(n) for n in range(4)))
    settings = dovecot.mailbox_settings("front-desk")
    with ImapMailbox(settings) as mailbox:
        first = mailbox.fetch(None, 2)
        dovecot.restart()
        second = mailbox.fetch(_after(first), 2)
        mailbox.finish([m.ref for m in (*first.messages, *second.messages)])
    assert len(second.messages) == 2
    assert (dovecot.count(), dovecot.count("Routed")) == (0, 4)


def test_imap_server_gone_for_good_mid_run_is_a_clear_retryable_error(
    dovecot: DovecotServer,
) -> None:
    dovecot.append(*(_message(n) for n in range(4)))
    settings = dovecot.mailbox_settings("front-desk")
    with contextlib.ExitStack() as stack:
        mailbox = stack.enter_context(ImapMailbox(settings))
        mailbox.fetch(None, 2)
        dovecot.stop()
        with pytest.raises(MailboxRetryableError, match="front-desk"):
            mailbox.fetch(None, 2)


def test_the_watcher_wakes_the_run_on_connect_and_when_mail_arrives(
    dovecot: DovecotServer, settings: Settings
) -> None:
    watched = settings.model_copy(update={"mailboxes": [dovecot.mailbox_settings("front-desk")]})

    async def main() -> list[str]:
        woke: asyncio.Queue[str] = asyncio.Queue()

        async def wake(name: str) -> None:
            await woke.put(name)

        watcher = asyncio.create_task(
            watch_mailboxes(watched, wake, sweep_every=3600, idle_for=2, retry_after=1)
        )
        try:
            first = await asyncio.wait_for(woke.get(), 60)  # connected
            await asyncio.to_thread(dovecot.append, _message(1))
            second = await asyncio.wait_for(woke.get(), 60)  # announced by IDLE or NOOP
        finally:
            watcher.cancel()
        return [first, second]

    assert asyncio.run(main()) == ["front-desk", "front-desk"]
