"""Benchmark: `python bench/run.py reminders [--n 5000] [--drop-every 300] [--database-url URL]`.

The real `send-reminders` flow, database included, sends `n` due reminder emails to
`testkit/smtp_sink.py`, an aiosmtpd server in its own process on loopback. The Prefect API
is a `prefect server start` process, started (and timed) before anything else, and the
flow runs once on nothing due first, as a long-lived worker would have.

Reported: the flow's wall time; a bare aiosmtplib loop sending the same messages, already
rendered and built, over one reused connection to a second sink (`bare_s`, with
`send_message`, so it serialises each message as the flow's mailer does, and
`bare_bytes_s`, with the wire bytes prepared beforehand); both ratios (bare / flow);
what the sink received (distinct Message-IDs and duplicates); and where the flow's time
went (`--profile` prints the top functions to stderr). A busy machine stretches wall times
but hardly moves CPU time: `flow_cpu_s` and `bare_cpu_s` are this process's CPU seconds
in the flow run and in the bare loop (the build helper process's are not counted), and
`ratio_cpu_vs_bare` their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.prefect_api import flush_logs, prefect_server

if TYPE_CHECKING:
    from email.message import EmailMessage

    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from office.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Tuesday 1 December 2026, 10:00 in Chicago: inside the send window.
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-") as tmp:
        home = Path(tmp)
        # Prefect reads its settings when first imported: point it at a private home and
        # the server started below before anything imports it.
        os.environ["PREFECT_HOME"] = str(home / "prefect")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        with prefect_server(home) as (api_url, server_start_s):
            os.environ["PREFECT_API_URL"] = api_url
            from testkit.smtp_sink import start_sink

            faults = ["--drop-every", str(args.drop_every)] if args.drop_every else []
            sink = start_sink(home / "sink", *faults)
            bare_sink = start_sink(home / "bare-sink")
            try:
                return _measure(args, home, sink.port, bare_sink.port, server_start_s, sink)
            finally:
                sink.stop()
                bare_sink.stop()


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py reminders")
    parser.add_argument("--n", type=int, default=5000, help="reminder emails to send")
    parser.add_argument(
        "--drop-every", type=int, default=None, help="sink drops the connection after every Nth"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--profile", action="store_true", help="profile the flow run")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be positive")
    return args


def _measure(
    args: argparse.Namespace,
    home: Path,
    port: int,
    bare_port: int,
    server_start_s: float,
    sink: Any,
) -> dict[str, Any]:
    from flows.reminders import send_reminders
    from flows.runtime import use_office
    from office.settings import load_settings

    settings = load_settings(
        home=home / "office",
        database_url=args.database_url,
        secret_key="bench-link-secret-32-bytes-or-longer",  # noqa: S106 - a throwaway key for a throwaway database
        mailer="smtp",
        smtp_port=port,
    )
    engine = _database(settings.db_url)
    try:
        current = use_office(settings, engine)
        seeded = _seed(current.factory, args.n)

        started = time.perf_counter()
        idle = asyncio.run(send_reminders(now=NOW - timedelta(days=3)))
        warmup_s = time.perf_counter() - started
        assert idle.get("sent_email", 0) == 0

        profiler = cProfile.Profile() if args.profile else None
        cpu_started = time.process_time()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        counts = asyncio.run(send_reminders(now=NOW))
        if profiler is not None:
            profiler.disable()
        wall_s = time.perf_counter() - started
        flow_cpu_s = time.process_time() - cpu_started
        flow_rss_mb = _rss_mb()
        received = sink.counts()
        flush_logs()

        messages = _prebuilt(current.factory, settings)
        bare_s, bare_cpu_s = asyncio.run(_bare_loop(bare_port, messages, as_bytes=False))
        bare_bytes_s, _ = asyncio.run(_bare_loop(bare_port, messages, as_bytes=True))
    finally:
        engine.dispose()
    if profiler is not None:
        _print_profile(profiler)
    sent = counts.get("sent_email", 0)
    return {
        "n": args.n,
        "wall_s": round(wall_s, 3),
        "bare_s": round(bare_s, 3),
        "bare_bytes_s": round(bare_bytes_s, 3),
        "ratio_vs_bare": round(bare_s / wall_s, 3),
        "ratio_vs_bare_bytes": round(bare_bytes_s / wall_s, 3),
        "flow_cpu_s": round(flow_cpu_s, 3),
        "bare_cpu_s": round(bare_cpu_s, 3),
        "ratio_cpu_vs_bare": round(bare_cpu_s / flow_cpu_s, 3),
        "ms_per_message": round(wall_s / max(sent, 1) * 1000, 2),
        "sent": sent,
        "delivered": len(received),
        "duplicates": sum(count - 1 for count in received.values()),
        "seeded": seeded,
        "drop_every": args.drop_every,
        "database": "postgresql" if args.database_url else "sqlite",
        "flow_peak_rss_mb": flow_rss_mb,
        "server_start_s": round(server_start_s, 2),
        "warmup_s": round(warmup_s, 2),
    }


def _database(url: str) -> Engine:
    from sqlalchemy import text

    from office.db import make_engine
    from office.migrate import upgrade

    engine = make_engine(url)
    if url.startswith("postgresql"):
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return engine


def _seed(factory: sessionmaker[Session], n: int) -> int:
    """`n` patients with an email and consent, each with a visit whose 24 h reminder is due."""
    from office.db import transaction
    from office.models import (
        Appointment,
        AppointmentType,
        Channel,
        Consent,
        Location,
        Patient,
        Practice,
        Provider,
    )

    with transaction(factory) as session:
        practice = Practice(name="Bench Clinic", phone="+13125550100", email_domain="bench.test")
        session.add(practice)
        session.flush()
        location = Location(
            practice_id=practice.id,
            name="Bench Main",
            timezone="America/Chicago",
            phone="+13125550100",
            address_line1="1 Bench Street",
            city="Chicago",
            state="IL",
            postal_code="60601",
        )
        provider = Provider(
            practice_id=practice.id, npi="1234567893", first_name="Kim", last_name="Lee"
        )
        kind = AppointmentType(
            code="visit",
            name="Follow-up visit",
            reminder_offsets=[{"hours": 24, "channels": ["email"]}],
        )
        session.add_all([location, provider, kind])
        session.flush()
        patients = [
            Patient(
                mrn=f"B{i:06d}",
                first_name="Pat",
                last_name=f"Bench{i}",
                date_of_birth=date(1980, 1, 1),
                sex="F",
                email=f"patient{i}@example.test",
            )
            for i in range(n)
        ]
        session.add_all(patients)
        session.flush()
        session.add_all(
            Consent(patient_id=p.id, channel=Channel.EMAIL, source="intake form") for p in patients
        )
        session.add_all(
            Appointment(
                patient_id=p.id,
                provider_id=provider.id,
                location_id=location.id,
                appointment_type_id=kind.id,
                start_at=NOW + timedelta(hours=23, minutes=i % 60),
                booked_at=NOW - timedelta(days=20),
            )
            for i, p in enumerate(patients)
        )
    return n


def _prebuilt(factory: sessionmaker[Session], settings: Settings) -> list[EmailMessage]:
    """The flow's own messages, rebuilt from the outbox: what the bare loop sends."""
    from sqlalchemy import select

    from office.models import OutboxItem, OutboxStatus
    from office.reminders import Draft, compose_email, load_visits

    with factory() as session:
        rows = list(
            session.scalars(
                select(OutboxItem)
                .where(OutboxItem.status == OutboxStatus.SENT)
                .order_by(OutboxItem.id)
            )
        )
        visits = load_visits(session, {row.appointment_id or 0 for row in rows})
    secret = settings.require_secret_key()
    return [
        compose_email(
            Draft(
                item_id=row.id,
                key=row.idempotency_key,
                kind=row.kind,
                detail=row.detail,
                created_at=row.created_at,
                recipient=row.recipient,
                visit=visits[row.appointment_id or 0],
            ),
            settings,
            secret,
        )
        for row in rows
    ]


async def _bare_loop(
    port: int, messages: list[EmailMessage], *, as_bytes: bool
) -> tuple[float, float]:
    """One aiosmtplib connection, one message after another: the floor for this transport.

    Returns the wall time and this process's CPU time, which a busy machine hardly moves.
    """
    import email.policy

    from aiosmtplib import SMTP

    wire = [m.as_bytes(policy=email.policy.SMTP) for m in messages] if as_bytes else []
    envelope = [(str(m["From"]).rpartition("<")[2].rstrip(">"), [str(m["To"])]) for m in messages]
    smtp = SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await smtp.connect()
    started, cpu_started = time.perf_counter(), time.process_time()
    for index, message in enumerate(messages):
        if as_bytes:
            sender, recipients = envelope[index]
            await smtp.sendmail(sender, recipients, wire[index])
        else:
            await smtp.send_message(message)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await smtp.quit()
    return elapsed, cpu


def _rss_mb() -> float:
    """This process's peak RSS so far: the flow's, before the baseline builds its messages."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _print_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
    print(out.getvalue(), file=sys.stderr)
