"""Waking the mail routing run when mail arrives: IMAP IDLE, with a periodic sweep as backstop.

`office serve` starts `watch_mailboxes` beside its other tasks. One thread per
IMAP mailbox holds an IDLE session, re-issued every `idle_for` seconds (servers
drop IDLE before RFC 2177's 29 minutes, some much sooner), and calls `wake` with
the mailbox's name on every (re)connect, when the server announces new messages,
and at least every `sweep_every` seconds whatever it announced: an IDLE that silently died must not
stop mail. A connection failure is logged (mailbox name and error class only)
and retried after `retry_after` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from integrations.mailbox.imap import ImapMailbox
from office.contracts.mailbox import MailboxError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from office.contracts.mailbox import MailboxSettings
    from office.settings import Settings

__all__ = ["watch_mailboxes"]

log = logging.getLogger("integrations.mailbox.watch")

Wake = Callable[[str], Coroutine[Any, Any, None]]


async def watch_mailboxes(
    settings: Settings,
    wake: Wake,
    *,
    sweep_every: float = 300.0,
    idle_for: float = 60.0,
    retry_after: float = 30.0,
) -> None:
    """Watch every IMAP mailbox until cancelled; `wake(name)` is awaited on the caller's loop.

    Args:
        wake: Starts a routing run for one mailbox (e.g. `run_deployment` of
            route-mail with `mailbox=name`); its errors are logged, not raised.
        sweep_every: Seconds between wake-ups when nothing was announced.
        idle_for: Seconds one IDLE command is held before it is re-issued.
    """
    boxes = [box for box in settings.inbound_mailboxes if box.kind == "imap"]
    if not boxes:
        return
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    threads = [
        asyncio.to_thread(
            _watch_one, box, loop, wake, stop, sweep_every, min(idle_for, sweep_every), retry_after
        )
        for box in boxes
    ]
    try:
        await asyncio.gather(*threads)
    finally:
        stop.set()


def _watch_one(
    box: MailboxSettings,
    loop: asyncio.AbstractEventLoop,
    wake: Wake,
    stop: threading.Event,
    sweep_every: float,
    idle_for: float,
    retry_after: float,
) -> None:
    last_wake = time.monotonic()
    while not stop.is_set():
        try:
            with ImapMailbox(box) as mailbox:
                # Mail may have come while no session was open: a run on every (re)connect.
                last_wake = time.monotonic()
                _call(loop, wake, box.name)
                while not stop.is_set():
                    arrived = mailbox.wait(idle_for)
                    if not arrived and b"IDLE" not in mailbox.capabilities:
                        stop.wait(idle_for)
                    if arrived or time.monotonic() - last_wake >= sweep_every:
                        last_wake = time.monotonic()
                        _call(loop, wake, box.name)
        except MailboxError as exc:
            log.warning("mailbox %s: watch interrupted (%s)", box.name, type(exc).__name__)
            stop.wait(retry_after)


def _call(loop: asyncio.AbstractEventLoop, wake: Wake, name: str) -> None:
    future: Future[None] = asyncio.run_coroutine_threadsafe(wake(name), loop)
    try:
        future.result()
    except Exception as exc:  # a failed wake-up must not end the watch; the sweep retries
        log.warning("mailbox %s: wake-up failed (%s)", name, type(exc).__name__)
