"""Faults against a real Dovecot and a real SMTP sink: SIGKILL mid-run, a restart mid-fetch.

The guarantee: every message on the server is stored once and routed once, and
filed on the server once routed; each acknowledgement is delivered at most once
(a send cut off by the kill is marked unknown for a person, never resent over SMTP).
Kill points are wherever the run happens to be when a count is reached; the
assertions hold for any of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.demo_mail import Person, synthetic_mail
from office.contracts.mailbox import FetchedBatch, Mailbox, MailboxRetryableError, Position
from office.mail import ingest
from office.mailing import DEFAULT_LEASE
from office.models import MailMessage, MailStatus, OutboxStatus
from office.settings import Settings
from testkit.dovecot import DovecotServer
from testkit.smtp_sink import Sink, start_sink
from tests.mail.conftest import NOW, Office

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def people(n: int) -> list[Person]:
    return [
        Person(f"MRN{300000 + i}", "Pat", f"Tester{i}", date(1970, 1, 1), f"p{i}@example.org")
        for i in range(n)
    ]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    started = start_sink(tmp_path / "sink")
    yield started
    started.stop()


def imap_settings(practice: Office, dovecot: DovecotServer, sink: Sink) -> Settings:
    box = dovecot.mailbox_settings("front-desk", address="frontdesk@riverbend.test")
    return practice.settings.model_copy(
        update={
            "mailboxes": [box],
            "mailer": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
        }
    )


def _environment(settings: Settings) -> dict[str, str]:
    [box] = settings.mailboxes
    mailbox = json.loads(box.model_dump_json())
    mailbox["password"] = box.password.get_secret_value() if box.password else None
    return {
        **os.environ,
        "OFFICE_HOME": str(settings.home),
        "OFFICE_DATABASE_URL": settings.db_url,
        "OFFICE_MAILBOXES": json.dumps([mailbox]),
        "OFFICE_MAILER": "smtp",
        "OFFICE_SMTP_HOST": "127.0.0.1",
        "OFFICE_SMTP_PORT": str(settings.smtp_port),
        "OFFICE_MAIL_FROM": settings.mail_from,
        "PREFECT_LOGGING_LEVEL": "ERROR",
    }


def _kill_when(reached: Callable[[], bool], settings: Settings) -> int:
    """Start a routing pass in a child process and SIGKILL it once `reached()` holds."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.mail.route_child", NOW.isoformat()],
        cwd=REPO,
        env=_environment(settings),
    )
    try:
        while not reached() and child.poll() is None:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    return child.returncode


def _count(factory: sessionmaker[Session], *where: object) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(MailMessage).where(*where)))


@pytest.mark.parametrize("moment", ["while storing", "while sending"])
def test_sigkill_mid_run_then_rerun_stores_routes_and_acknowledges_at_most_once(
    practice: Office, dovecot: DovecotServer, sink: Sink, moment: str
) -> None:
    total = 240
    messages = synthetic_mail(
        total, people=people(total), mailbox_address="frontdesk@riverbend.test", now=NOW
    )
    dovecot.append(*(raw for _, raw in messages))
    settings = imap_settings(practice, dovecot, sink)
    if moment == "while storing":
        reached = lambda: _count(practice.factory) >= 1  # noqa: E731 - first batch committed
    else:
        reached = lambda: len(sink.ids()) >= 5  # noqa: E731

    code = _kill_when(reached, settings)
    practice.settings = settings
    practice.run(NOW + DEFAULT_LEASE + timedelta(minutes=1))

    # stored once, routed once
    rows = practice.mail()
    assert len(rows) == total
    assert len({row.dedupe_key for row in rows}) == total
    assert {row.status for row in rows} == {MailStatus.ROUTED}
    # filed at the IMAP server, each message once
    routed_ids = dovecot.message_ids("Routed")
    assert dovecot.count() == 0
    assert sorted(routed_ids) == sorted(row.message_id for row in rows)
    # acknowledged at most once, at the SMTP sink
    acks = [item for item in practice.outbox() if item.kind == "mail_ack"]
    delivered = Counter(sink.ids())
    assert acks
    assert set(delivered.values()) <= {1}
    assert {str(item.message_id) for item in acks if item.status is OutboxStatus.SENT} <= set(
        delivered
    )
    in_doubt = [item for item in acks if item.status is OutboxStatus.UNKNOWN]
    assert len(in_doubt) <= 1
    assert {item.status for item in acks} <= {OutboxStatus.SENT, OutboxStatus.UNKNOWN}
    assert len({item.detail["mail_id"] for item in acks}) == len(acks)
    assert code in (-signal.SIGKILL, 0)


class RestartingMailbox:
    """The real IMAP adapter, with Dovecot restarted after its first fetch (a fault, not a fake)."""

    def __init__(self, inner: Mailbox, dovecot: DovecotServer, *, come_back: bool) -> None:
        self.inner, self.dovecot, self.come_back = inner, dovecot, come_back
        self.name = inner.name
        self.fetches = 0

    def __enter__(self) -> RestartingMailbox:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(None, None, None)

    def fetch(self, after: Position | None, limit: int) -> FetchedBatch:
        self.fetches += 1
        if self.fetches == 2:
            if self.come_back:
                self.dovecot.restart()
            else:
                self.dovecot.stop()
        return self.inner.fetch(after, limit)

    def finish(self, refs: list[str]) -> None:
        self.inner.finish(refs)

    def wait(self, timeout: float) -> bool:
        return self.inner.wait(timeout)


@pytest.mark.parametrize("come_back", [True, False], ids=["restarted", "gone"])
def test_dovecot_restarted_mid_fetch_reconnects_or_fails_clearly_and_loses_nothing(
    practice: Office, engine: Engine, dovecot: DovecotServer, come_back: bool
) -> None:
    from integrations.mailbox import ImapMailbox

    messages = synthetic_mail(30, mailbox_address="frontdesk@riverbend.test", now=NOW)
    dovecot.append(*(raw for _, raw in messages))
    box = dovecot.mailbox_settings("front-desk")
    mailbox = RestartingMailbox(ImapMailbox(box), dovecot, come_back=come_back)
    with mailbox:
        if come_back:
            result = ingest(practice.factory, mailbox, now=NOW, batch_size=10)
            assert result.stored == 30
        else:
            with pytest.raises(MailboxRetryableError, match="front-desk"):
                ingest(practice.factory, mailbox, now=NOW, batch_size=10)
    stored_first = _count(practice.factory)
    assert stored_first == (30 if come_back else 10)
    if not come_back:
        dovecot.start()
    with ImapMailbox(box) as again:
        ingest(practice.factory, again, now=NOW, batch_size=10)
    assert _count(practice.factory) == 30
    assert _count(practice.factory, MailMessage.status == MailStatus.STORED) == 30
    assert dovecot.count() == 30  # nothing is filed before it is routed
