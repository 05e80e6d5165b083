"""`office demo`, the README's first command, run twice in a fresh OFFICE_HOME."""

from __future__ import annotations

import os
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
from office.models import Appointment, Location, Patient, Staff, StaffStatus, utcnow


def run_demo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "PREFECT_"))}
    env["OFFICE_HOME"] = str(home)
    env["COLUMNS"] = "160"
    return subprocess.run(
        [sys.executable, "-m", "app", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


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
    engine.dispose()
    # The summary is counts only: no patient's name reaches the terminal.
    assert not any(f" {name} " in outputs[1] for name in surnames)
    # Whatever the hour, the demo runs when its send window is open, and mails reminders.
    assert "sent_email" in outputs[1]
    check_a_demo_reminder(home / "outbox")


def check_a_demo_reminder(outbox: Path) -> None:
    """A reminder the demo wrote reads back with the standard parsers, calendar included."""
    files = sorted(outbox.glob("*.eml"))
    assert files
    message = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert isinstance(message, EmailMessage)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == f"<{files[0].stem}>"
    assert message.get_body(preferencelist=("plain",)) is not None
    inline = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert inline.get_param("method") == "REQUEST"
    calendar = Calendar.from_ical(inline.get_content())  # type: ignore[attr-defined]
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]).startswith("appt-")
    assert event.decoded("DTSTART") > utcnow()
    assert [p.get_filename() for p in message.iter_attachments()] == ["invite.ics"]


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
    engine.dispose()


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
