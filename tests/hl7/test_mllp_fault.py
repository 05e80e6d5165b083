"""The listener killed with SIGKILL while a sender streams 1,000 messages and resends each
one that got no ACK: afterwards every message is stored exactly once.

The listener runs in its own process and is killed three times, each time once the sender
has had a given number of ACKs (a condition, not a clock), and started again on the same
port. Whatever was stored but not acknowledged when it died comes again and is absorbed by
its control id; whatever was neither is stored on the resend.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from integrations.hl7 import MllpSender
from integrations.hl7.samples import SamplePatient, adt_message
from office.models import InboxItem
from tests.app.processes import wait_for
from tests.hl7.helpers import NOW

pytestmark = pytest.mark.slow

TOTAL = 1000
KILL_AT = (250, 500, 750)
ROOT = Path(__file__).resolve().parents[2]


class Listener:
    """The listener process: started, killed, started again on the port it first took."""

    def __init__(self, db_url: str, folder: Path) -> None:
        self.db_url = db_url
        self.ready = folder / "ready"
        self.log = folder / "listener.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tests.hl7.listener_process", self.db_url]
        command += [str(self.port), str(self.ready)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFFICE_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        assert wait_for(self._up, within=120), self.log.read_text()
        self.port = int(self.ready.read_text())

    def _up(self) -> bool:
        assert self.process is not None
        return self.ready.exists() or self.process.poll() is not None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def test_every_message_is_stored_exactly_once_across_kills(
    db_url: str, engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    messages = [
        adt_message("A08", f"FAULT-{n:04d}", SamplePatient(mrn=f"MRN{n:05d}"), sent_at=NOW)
        for n in range(TOTAL)
    ]
    listener = Listener(db_url, tmp_path)
    codes: list[str] = []
    failure: list[BaseException] = []
    sent = [0]

    async def stream() -> None:
        async with MllpSender("127.0.0.1", listener.port, ack_timeout=60) as sender:
            for message in messages:
                ack = await sender.deliver(message, within=300)
                codes.append(ack.code)
            sent[0] = sender.sent

    def sender_thread() -> None:
        try:
            asyncio.run(stream())
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)

    listener.start()
    thread = threading.Thread(target=sender_thread, name="mllp-sender")
    try:
        thread.start()
        for mark in KILL_AT:
            assert wait_for(lambda m=mark: len(codes) >= m or not thread.is_alive(), within=300)
            assert thread.is_alive(), failure
            listener.kill()
            listener.start()
        thread.join(timeout=600)
        assert not thread.is_alive(), f"the sender is still streaming after {len(codes)} ACKs"
    finally:
        listener.stop()
    assert failure == []
    assert codes == ["AA"] * TOTAL
    assert sent[0] >= TOTAL
    with factory() as session:
        rows = session.execute(
            select(InboxItem.idempotency_key, func.count()).group_by(InboxItem.idempotency_key)
        ).all()
        bodies = dict(session.execute(select(InboxItem.idempotency_key, InboxItem.body)).all())
    assert len(rows) == TOTAL
    assert {count for _, count in rows} == {1}
    assert {key for key, _ in rows} == {f"FAULT-{n:04d}" for n in range(TOTAL)}
    assert all(bodies[f"FAULT-{n:04d}"] == messages[n] for n in range(TOTAL))
