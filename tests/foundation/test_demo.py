"""`office demo`, the README's first command: run twice in a fresh OFFICE_HOME, through a slow
Prefect start, a start that never comes, and a stop from outside."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from app.demo import demo_clock
from office.db import make_engine, make_sessionmaker
from office.models import (
    Appointment,
    InboxItem,
    InboxStatus,
    Location,
    MailMessage,
    MailStatus,
    Patient,
    Staff,
    StaffStatus,
    utcnow,
)
from tests.app.processes import alive, in_group, wait_for

SLOW_START = Path(__file__).resolve().parent.parent / "app" / "slow_start.py"


def demo_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "PREFECT_"))}
    return env | {"OFFICE_HOME": str(home), "COLUMNS": "160"} | extra


def run_demo(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "demo", *args],
        env=demo_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def delayed(pidfile: Path, seconds: str) -> str:
    """An OFFICE_PREFECT_SERVER_WRAPPER that starts the real server after `seconds` (or never)."""
    return f"{sys.executable} {SLOW_START} {pidfile} {seconds}"


@pytest.mark.slow
def test_demo_twice_is_safe_and_reports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outputs = []
    for _ in range(2):
        done = run_demo(home)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    for output in outputs:
        assert "What each flow did" in output
        assert "Open work items by kind" in output
        assert "Where the time went" in output
        assert "Prefect API start" in output

    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) >= 200
        assert session.scalar(select(func.count()).select_from(Appointment)) >= 400
        zones = set(session.scalars(select(Location.timezone)))
        assert len(session.scalars(select(Location)).all()) >= 3
        assert len(zones) >= 2
        assert session.scalar(select(func.count()).select_from(Staff)) >= 10
        next_week = utcnow().date() + timedelta(days=7)
        hires = session.scalars(select(Staff).where(Staff.status == StaffStatus.PENDING)).all()
        assert len(hires) == 2
        assert all(utcnow().date() < h.start_date <= next_week for h in hires)
        starts = session.scalars(select(Appointment.start_at)).all()
        assert max(starts) <= demo_clock(utcnow()) + timedelta(days=14)
        surnames = set(session.scalars(select(Patient.last_name)))
        # The demo's mailbox was filled after the reminders and routed: none left unread.
        mail = session.scalars(select(MailMessage.status)).all()
    engine.dispose()
    assert "route-mail" in outputs[1]
    assert len(mail) >= 40
    assert MailStatus.STORED not in mail
    # The summary is counts only: no patient's name reaches the terminal.
    assert not any(f" {name} " in outputs[1] for name in surnames)
    # Whatever the hour, the demo runs when its send window is open, and mails reminders.
    assert "sent_email" in outputs[1]
    check_a_demo_reminder(home / "outbox")


def check_a_demo_reminder(outbox: Path) -> None:
    """A reminder the demo wrote reads back with the standard parsers, calendar included."""
    # The outbox also holds the acknowledgements of routed mail (auto-replied): a reminder
    # is the first auto-generated message.
    parse = BytesParser(policy=policy.default).parsebytes
    sent = [(path, parse(path.read_bytes())) for path in sorted(outbox.glob("*.eml"))]
    assert any(m["Auto-Submitted"] == "auto-replied" for _, m in sent)
    path, message = next((p, m) for p, m in sent if m["Auto-Submitted"] == "auto-generated")
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == f"<{path.stem}>"
    assert message.get_body(preferencelist=("plain",)) is not None
    inline = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert inline.get_param("method") == "REQUEST"
    calendar = Calendar.from_ical(inline.get_content())  # type: ignore[attr-defined]
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]).startswith("appt-")
    assert event.decoded("DTSTART") > utcnow()
    assert [p.get_filename() for p in message.iter_attachments()] == ["invite.ics"]


@pytest.mark.slow
def test_demo_waits_out_a_prefect_start_slower_than_prefects_own_default(tmp_path: Path) -> None:
    """Prefect's own temporary server gives up after 20 s; the demo's budget is 120 s."""
    pidfile = tmp_path / "server.pid"
    done = run_demo(tmp_path / "home", OFFICE_PREFECT_SERVER_WRAPPER=delayed(pidfile, "25"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "What each flow did" in done.stdout
    start = re.search(r"Prefect API start\s*│\s*([\d.]+)", done.stdout)
    assert start, done.stdout
    assert float(start[1]) >= 25  # the table keeps the start apart, the delay inside it
    assert not alive(int(pidfile.read_text()))


def test_a_prefect_start_that_never_comes_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    done = run_demo(
        tmp_path / "home",
        OFFICE_PREFECT_SERVER_WRAPPER=delayed(pidfile, "never"),
        OFFICE_PREFECT_START_TIMEOUT="3",
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    log = tmp_path / "home" / "prefect" / "server.log"
    assert re.fullmatch(
        rf"error: Prefect did not answer on http://127\.0\.0\.1:\d+/api within 3 s; read "
        rf"{re.escape(str(log.resolve()))}, or allow longer with OFFICE_PREFECT_START_TIMEOUT\n",
        done.stderr,
    )
    assert not alive(int(pidfile.read_text()))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_stopping_the_demo_stops_its_prefect_server(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C and SIGTERM stop it in order, without a traceback; after SIGKILL Linux does."""
    pidfile = tmp_path / "server.pid"
    env = demo_env(tmp_path / "home", OFFICE_PREFECT_SERVER_WRAPPER=delayed(pidfile, "never"))
    demo = subprocess.Popen(
        [sys.executable, "-m", "app", "demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: pidfile.is_file() and pidfile.read_text() != "", within=120)
        server = int(pidfile.read_text())
        assert alive(server)
        demo.send_signal(stop)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 130)
    assert "Traceback" not in stderr
    assert wait_for(lambda: not in_group(server), within=30)


def test_seed_only_runs_no_flow(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "home", "--seed-only")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "What each flow did" not in done.stdout
    assert "demo practice: 220 patients" in done.stdout


def test_demo_refuses_a_database_holding_a_real_practice(tmp_path: Path) -> None:
    from office.db import transaction
    from office.migrate import upgrade
    from office.models import Practice

    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        session.add(Practice(name="Real Clinic"))
    engine.dispose()
    done = run_demo(home, "--seed-only")
    assert done.returncode == 1
    assert "not the demo" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        ("2026-11-27T18:07:00+00:00", "2026-11-27T18:07:00+00:00"),  # noon in Chicago: as is
        ("2026-11-27T05:17:00+00:00", "2026-11-27T16:00:00+00:00"),  # night: 09:00 in Denver
        ("2026-07-01T02:40:00+00:00", "2026-07-01T15:00:00+00:00"),  # summer time moves it
    ],
)
def test_demo_clock_waits_for_the_send_window_at_every_clinic(real: str, expected: str) -> None:
    from datetime import datetime

    assert demo_clock(datetime.fromisoformat(real)) == datetime.fromisoformat(expected)


def test_demo_refuses_patients_without_a_practice_and_keeps_them(tmp_path: Path) -> None:
    """Anything the demo did not build and mark is someone's data: one line, nothing deleted."""
    from datetime import date

    from office.db import transaction
    from office.migrate import upgrade

    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        session.add(
            Patient(
                mrn="MRN-REAL-1",
                first_name="Ada",
                last_name="Real",
                date_of_birth=date(1970, 1, 1),
                sex="F",
            )
        )
    done = run_demo(home, "--seed-only")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "not the demo's" in done.stderr
    assert "Traceback" not in done.stderr
    with make_sessionmaker(engine)() as session:
        assert session.scalars(select(Patient.mrn)).all() == ["MRN-REAL-1"]
    engine.dispose()


def test_demo_refuses_a_practice_named_like_the_demos_but_not_marked(tmp_path: Path) -> None:
    from app.demo_data import DEMO_PRACTICE
    from office.db import transaction
    from office.migrate import upgrade
    from office.models import Practice

    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        session.add(Practice(name=DEMO_PRACTICE))
    engine.dispose()
    done = run_demo(home, "--seed-only")
    assert (done.returncode, "not the demo's" in done.stderr) == (1, True)


def test_demo_rebuilds_what_it_built_itself(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for _ in range(2):
        done = run_demo(home, "--seed-only")
        assert done.returncode == 0, done.stderr[-2000:]
    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 220
        stored = session.execute(
            select(InboxItem.source, InboxItem.status)
            .where(InboxItem.source.like("file:%") | InboxItem.source.like("row:%"))
            .order_by(InboxItem.id)
        ).all()
    engine.dispose()
    # The practice and its patients came in as files, through the inbox, every row applied.
    files = ["practice-a-week-ago.yaml", "practice.yaml", "patients.csv"]
    assert stored == [(f"file:{name}", InboxStatus.PROCESSED) for name in files]
    assert sorted(path.name for path in (home / "demo").iterdir()) == sorted(files)


def test_the_demo_data_is_the_same_for_a_seed_and_each_patient_is_distinct() -> None:
    from datetime import UTC, datetime

    from app.demo_data import build_demo

    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    data = build_demo(now=now)
    assert data == build_demo(now=now)
    assert data != build_demo(seed=7, now=now)
    phones = [row["phone"] for row in data.patients if "phone" in row]
    emails = [row["email"] for row in data.patients if "email" in row]
    assert len(set(phones)) == len(phones) > 150
    assert len(set(emails)) == len(emails) > 150
    assert all(e.endswith("@example.com") for e in emails)


def test_the_demo_home_holds_nothing_other_users_can_read(tmp_path: Path) -> None:
    """Under the most permissive umask, every folder the demo makes is 0700, every file 0600."""
    import stat

    home = tmp_path / "practice" / "home"
    previous = os.umask(0)
    try:
        done = run_demo(home, "--seed-only")
    finally:
        os.umask(previous)
    assert done.returncode == 0, done.stderr[-2000:]
    made = [tmp_path / "practice", *sorted(home.parent.rglob("*"))]
    modes = {
        path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode) for path in made
    }
    assert {"practice/home/office.db", "practice/home/secrets.env"} <= set(modes)
    assert modes == {name: 0o700 if (tmp_path / name).is_dir() else 0o600 for name in modes}
