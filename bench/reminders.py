"""Benchmark: `python bench/run.py reminders [--n 5000] [--connections 4] [--drop-every 300]
[--database-url URL] [--repeat 3]`.

The real `send-reminders` flow, database included, sends `n` due reminder emails over
OFFICE_SMTP_CONNECTIONS connections (`--connections`) to
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
`ratio_cpu_vs_bare` their ratio. Each round has a fresh practice, fresh sinks and its own
bare loop; the rounds and their median are printed, and the goal reads on the median of
the per-round ratios. With `--n` other than 5,000, `ratio_linear` is the per-message cost
at n over that of a 5,000-message round run afterwards; `flow_peak_rss_mb` is this
process's peak after the flow (before the bare loop builds its messages).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._database import fresh_database, in_child
from bench._rounds import bound_by, own_peak_rss_mb, print_profile, print_rounds
from bench.prefect_api import flush_logs, prefect_server

if TYPE_CHECKING:
    from email.message import EmailMessage

    from sqlalchemy.orm import Session, sessionmaker

    from office.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Tuesday 1 December 2026, 10:00 in Chicago: inside the send window.
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


DEFAULT_N = 5000


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
            return _measure(args, home, server_start_s)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py reminders")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="reminder emails to send")
    parser.add_argument(
        "--drop-every", type=int, default=None, help="sink drops the connection after every Nth"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--connections", type=int, default=None, help="OFFICE_SMTP_CONNECTIONS (default: its)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="rounds, the goal read on their median (default 3; 1 above 10,000 messages)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the flow runs")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.n <= 10_000 else 1
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be positive")
    return args


def _measure(args: argparse.Namespace, home: Path, server_start_s: float) -> dict[str, Any]:
    profiler = cProfile.Profile() if args.profile else None
    rounds: list[dict[str, float]] = []
    rss: list[float] = []
    for index in range(args.repeat):
        one = _round(args, args.n, home / f"round-{index}", profiler)
        rss.append(one.pop("flow_rss_mb"))
        rounds.append(one)
    # The first round's: a later round's peak includes the bare loop's built messages.
    flow_rss_mb = rss[0]
    middle = print_rounds("reminders", rounds)
    result: dict[str, Any] = {
        "n": args.n,
        "rounds": len(rounds),
        "connections": middle["connections"],
        "wall_s": round(middle["wall_s"], 3),
        "bare_s": round(middle["bare_s"], 3),
        "bare_bytes_s": round(middle["bare_bytes_s"], 3),
        "ratio_vs_bare": round(middle["ratio_vs_bare"], 3),
        "ratio_vs_bare_bytes": round(middle["ratio_vs_bare_bytes"], 3),
        "ratio_vs_bare_rounds": [round(r["ratio_vs_bare"], 3) for r in rounds],
        "flow_cpu_s": round(middle["flow_cpu_s"], 3),
        "bare_cpu_s": round(middle["bare_cpu_s"], 3),
        "ratio_cpu_vs_bare": round(middle["bare_cpu_s"] / middle["flow_cpu_s"], 3),
        "ms_per_message": round(middle["wall_s"] / args.n * 1000, 3),
        "sent": int(min(r["sent"] for r in rounds)),
        "delivered": int(min(r["delivered"] for r in rounds)),
        "duplicates": int(max(r["duplicates"] for r in rounds)),
        "drop_every": args.drop_every,
        "database": "postgresql" if args.database_url else "sqlite",
        "server_start_s": round(server_start_s, 2),
        "warmup_s": round(middle["warmup_s"], 2),
    }
    if args.n != DEFAULT_N:
        # Flat cost: the per-message cost here over that of a default-size round run now.
        reference = _round(args, DEFAULT_N, home / "reference", None)
        per_message = middle["wall_s"] / args.n
        result["reference_n"] = DEFAULT_N
        result["reference_wall_s"] = round(reference["wall_s"], 3)
        result["ratio_linear"] = round(per_message / (reference["wall_s"] / DEFAULT_N), 3)
    result["flow_peak_rss_mb"] = flow_rss_mb
    result["bound"] = bound_by(
        flow_cpu_s=middle["flow_cpu_s"],
        wall_s=middle["wall_s"],
        waits="the SMTP server and the database's commit of each claim",
    )
    print(f"reminders: {result['bound']}", file=sys.stderr)
    if profiler is not None:
        print_profile(profiler)
    return result


def _round(
    args: argparse.Namespace, n: int, home: Path, profiler: cProfile.Profile | None
) -> dict[str, float]:
    """A fresh practice with `n` reminders due, the flow over it, then the bare loop."""
    from flows.reminders import send_reminders
    from flows.runtime import use_office
    from office.settings import load_settings
    from testkit.smtp_sink import start_sink

    faults = ["--drop-every", str(args.drop_every)] if args.drop_every else []
    sink = start_sink(home / "sink", *faults)
    bare_sink = start_sink(home / "bare-sink")
    extra = {"smtp_connections": args.connections} if args.connections else {}
    settings = load_settings(
        home=home / "office",
        database_url=args.database_url,
        secret_key="bench-link-secret-32-bytes-or-longer",  # noqa: S106 - a throwaway key for a throwaway database
        mailer="smtp",
        smtp_port=sink.port,
        **extra,
    )
    engine = fresh_database(settings.db_url)
    try:
        current = use_office(settings, engine)
        in_child(_seed_database, settings.db_url, n)

        started = time.perf_counter()
        idle = asyncio.run(send_reminders(now=NOW - timedelta(days=3)))
        warmup_s = time.perf_counter() - started
        assert idle.get("sent_email", 0) == 0

        cpu_started = time.process_time()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        counts = asyncio.run(send_reminders(now=NOW))
        if profiler is not None:
            profiler.disable()
        wall_s = time.perf_counter() - started
        flow_cpu_s = time.process_time() - cpu_started
        flow_rss_mb = own_peak_rss_mb()
        received = sink.counts()
        flush_logs()

        messages = _prebuilt(current.factory, settings)
        bare_s, bare_cpu_s = asyncio.run(_bare_loop(bare_sink.port, messages, as_bytes=False))
        bare_bytes_s, _ = asyncio.run(_bare_loop(bare_sink.port, messages, as_bytes=True))
        del messages
    finally:
        engine.dispose()
        sink.stop()
        bare_sink.stop()
    return {
        "connections": float(settings.smtp_connections),
        "wall_s": wall_s,
        "bare_s": bare_s,
        "bare_bytes_s": bare_bytes_s,
        "ratio_vs_bare": bare_s / wall_s,
        "ratio_vs_bare_bytes": bare_bytes_s / wall_s,
        "flow_cpu_s": flow_cpu_s,
        "bare_cpu_s": bare_cpu_s,
        "sent": float(counts.get("sent_email", 0)),
        "delivered": float(len(received)),
        "duplicates": float(sum(count - 1 for count in received.values())),
        "warmup_s": warmup_s,
        "flow_rss_mb": flow_rss_mb,
    }


def _seed_database(url: str, n: int) -> int:
    """`_seed` on its own engine (run in a child process: see `in_child`)."""
    from office.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        return _seed(make_sessionmaker(engine), n)
    finally:
        engine.dispose()


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
    """The flow's own messages, rebuilt from the outbox as `EmailMessage`s: what the bare
    loop sends (the flow writes the same bytes without building the objects)."""
    from sqlalchemy import select

    from office.messages import build_email
    from office.models import OutboxItem, OutboxStatus
    from office.reminders import Draft, email_parts, load_visits

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
        build_email(
            **email_parts(
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
