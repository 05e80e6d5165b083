"""Build a batch's emails in a worker process while the send loop talks SMTP.

Rendering, the calendar file and MIME flattening cost more CPU per message than
the SMTP conversation, and the send loop spends its time waiting on the server.
So a large batch hands its emails to one worker process, in order, and the loop
picks each one up just before it claims the row: the worker builds message n+1
while message n is on the wire, on the machine's other core. The loop never
waits for the worker: what is not built yet when its turn comes (while the
worker starts, say) the loop builds itself.

Nothing about delivery moves: the loop still judges every row at the moment it
goes, claims it, sends it and records the outcome; a message built ahead for a
recipient the loop no longer chooses is simply built again in line. The worker
holds no database connection and writes nothing; if it dies, the loop builds
every remaining message itself.

PHI stays in this machine's memory: the jobs travel over the executor's local
pipe, and nothing here logs.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from office.clock import chunks
from office.contracts.mail import Wire
from office.reminders.compose import Draft, compose_email

if TYPE_CHECKING:
    from office.settings import Settings

__all__ = ["AHEAD_MIN", "Prebuilt", "build_emails", "shutdown"]

AHEAD_MIN = 100
"""Emails a batch must hold before building ahead pays for starting the worker (~1 s)."""

_CHUNK = 8  # emails per job: amortises the pipe, keeps the first send close

_lock = threading.Lock()
_executor: ProcessPoolExecutor | None = None


def build_emails(drafts: Sequence[Draft], settings: Settings, secret: str) -> list[Wire | None]:
    """Compose and flatten each draft's email; the worker's whole task, in order.

    A draft that cannot be built is None, and the send loop builds it in line, where
    its failure is recorded on its row: one bad row never costs its chunk.
    """
    return [_build(draft, settings, secret) for draft in drafts]


def _build(draft: Draft, settings: Settings, secret: str) -> Wire | None:
    try:
        return compose_email(draft, settings, secret)
    except Exception:  # the loop builds it again and records why
        return None


class Prebuilt:
    """One batch's emails, queued on the worker in send order and handed out by outbox row."""

    def __init__(self, slots: dict[int, tuple[str, Future[list[Wire | None]], int]]) -> None:
        self._slots = slots

    @classmethod
    def start(cls, drafts: Sequence[Draft], settings: Settings, secret: str) -> Prebuilt:
        """Queue the drafts on the worker, or nothing when the batch is too small to gain."""
        if len(drafts) < AHEAD_MIN:
            return cls({})
        slots: dict[int, tuple[str, Future[list[Wire | None]], int]] = {}
        try:
            executor = _worker()
            for chunk in chunks(drafts, _CHUNK):
                future = executor.submit(build_emails, chunk, settings, secret)
                for index, draft in enumerate(chunk):
                    slots[draft.item_id] = (draft.recipient, future, index)
        except (BrokenProcessPool, RuntimeError, OSError):
            # No worker to be had: every message is built in line, as for a small batch.
            for _, future, _ in slots.values():
                future.cancel()
            _discard_worker()
            return cls({})
        return cls(slots)

    def take(self, item_id: int, recipient: str) -> Wire | None:
        """This row's email if it is built, for `recipient`; None means build it in line.

        The loop never waits for the worker: building a message here beats
        waiting for it (the worker may still be starting), and a chunk the
        worker has not begun is withdrawn so it is not built twice.
        """
        slot = self._slots.pop(item_id, None)
        if slot is None or slot[0] != recipient:
            return None
        _, future, index = slot
        if not future.done():
            future.cancel()
            return None
        if future.cancelled():
            return None
        try:
            return future.result()[index]
        except BrokenProcessPool:
            # The worker died: the loop builds the rest of the batch itself.
            _discard_worker()
            self.cancel()
            return None
        except Exception:  # e.g. a chunk that would not pickle: built in line
            return None

    def done(self) -> bool:
        """True when nothing asked of the worker is still being built."""
        return all(future.done() for _, future, _ in self._slots.values())

    def cancel(self) -> None:
        """Drop whatever was not taken: a batch that stops early leaves nothing queued."""
        for _, future, _ in self._slots.values():
            future.cancel()
        self._slots.clear()


def _worker() -> ProcessPoolExecutor:
    """The process-wide worker, started on first use and reused by every later batch."""
    global _executor
    with _lock:
        if _executor is None:
            # spawn, not fork: a Prefect process has threads whose locks a fork would copy.
            _executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_follow_parent,
            )
        return _executor


def _follow_parent() -> None:
    """In the worker: exit as soon as the process that started it is gone, even by SIGKILL."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _discard_worker() -> None:
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the worker now (tests, and processes that want it gone before exit)."""
    _discard_worker()
