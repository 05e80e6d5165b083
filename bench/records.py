"""Benchmark: `python bench/run.py records [--n 10000] [--database-url URL] [--repeat 3]
[--mllp-n 5000]`.

CSV: a file of `n` patients with a coverage each (synthetic, the same every run) is stored
in the inbox and imported by the real handler, `process_item` on the stored file, as
`office records import` and the `import-records` flow run it: decoded, each row stored as
its own inbox item, validated, matched (MRN, then candidates by date of birth), applied
with an audit entry per field, the rows marked processed, all in one transaction. The
baseline, in the same round on a second fresh database: a bare loop that reads the same
bytes with `csv`, validates each row with the same libraries (phonenumbers to E.164,
email-validator, the date and code checks) and inserts patients and coverages with
`executemany` (no inbox, no matching, no audit). `ratio_vs_bare` is bare / import, read
on the median of the rounds; `rows_per_s` is n / the import's wall time.

MLLP: `--mllp-n` ADT A08 messages over one connection to the real listener (in this
process, on loopback), each sent after the previous one's ACK, which comes after the
message's commit to the inbox; `mllp_msgs_per_s`.

SQLite by default (a file in a temporary directory); `--database-url` for PostgreSQL (its
public schema is dropped and rebuilt for each round: use a throwaway database).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import re
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._database import fresh_database
from bench._rounds import bound_by, print_rounds

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
PRACTICE_FILE = ROOT / "templates" / "examples" / "practice.yaml"
DEFAULT_N = 10_000

FIRST = ("Avery", "Blake", "Casey", "Dana", "Emery", "Finley", "Gray", "Harper", "Indy", "Jules")
LAST = ("Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy", "Juniper")
HEADER = (
    "mrn,first_name,last_name,date_of_birth,sex,phone,email,address_line1,city,state,"
    "postal_code,payer_code,member_id,group_number,effective_from,relationship"
)


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-") as tmp:
        home = Path(tmp)
        body = csv_file(args.n)
        rounds = [_round(args, body, home / f"round-{i}") for i in range(args.repeat)]
        middle = print_rounds("records", rounds)
        (home / "mllp").mkdir()
        mllp_s = asyncio.run(_mllp(args, home / "mllp")) if args.mllp_n else 0.0
    result: dict[str, Any] = {
        "n": args.n,
        "rounds": len(rounds),
        "database": "postgresql" if args.database_url else "sqlite",
        "wall_s": round(middle["wall_s"], 3),
        "rows_per_s": round(args.n / middle["wall_s"], 1),
        "bare_s": round(middle["bare_s"], 3),
        "ratio_vs_bare": round(middle["ratio_vs_bare"], 3),
        "ratio_vs_bare_rounds": [round(r["ratio_vs_bare"], 3) for r in rounds],
        "import_cpu_s": round(middle["import_cpu_s"], 3),
        "bare_cpu_s": round(middle["bare_cpu_s"], 3),
        "ratio_cpu_vs_bare": round(middle["ratio_cpu_vs_bare"], 3),
        "audit_entries": int(middle["audit_entries"]),
        "applied": int(middle["applied"]),
        "mllp_n": args.mllp_n,
        "mllp_s": round(mllp_s, 3),
        "mllp_msgs_per_s": round(args.mllp_n / mllp_s, 1) if mllp_s else None,
    }
    result["bound"] = bound_by(
        flow_cpu_s=middle["import_cpu_s"],
        wall_s=middle["wall_s"],
        waits="the database's writes (rows, inbox items, audit entries)",
    )
    print(f"records: {result['bound']}", file=sys.stderr)
    return result


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py records")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="CSV rows (patients)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is read")
    parser.add_argument("--mllp-n", type=int, default=5000, help="ADT A08 over MLLP (0: none)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1 or args.mllp_n < 0:
        parser.error("--n and --repeat must be positive, --mllp-n not negative")
    return args


def csv_file(n: int) -> bytes:
    """`n` distinct patients with a primary coverage, as a practice-management export."""
    out = io.StringIO()
    out.write(HEADER + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    for i in range(n):
        first, last = FIRST[i % 10], f"{LAST[(i // 10) % 10]}{i // 100}"
        born = date(1940, 1, 1) + timedelta(days=(i * 37) % 29_000)
        writer.writerow(
            [
                f"B{i:07d}",
                first,
                last,
                born.isoformat(),
                "FM"[i % 2],
                f"(312) 555-{i % 10_000:04d}",
                f"{first}.{last}@example.com".lower(),
                f"{i % 900 + 1} Lake Street",
                "Chicago",
                "IL",
                "60601",
                "60054",
                f"W{i:09d}",
                "GRP-1001",
                "2025-01-01",
                "18",
            ]
        )
    return out.getvalue().encode("utf-8")


def _practice(factory: sessionmaker[Session]) -> None:
    from office.db import transaction
    from office.practice import apply_practice, parse_practice

    with transaction(factory) as session:
        document = parse_practice(PRACTICE_FILE.read_bytes())
        apply_practice(session, document, actor="bench", source="bench", now=NOW)


def _url(args: argparse.Namespace, home: Path) -> str:
    return args.database_url or f"sqlite:///{home}/office.db"


def _round(args: argparse.Namespace, body: bytes, home: Path) -> dict[str, float]:
    from sqlalchemy import func, select

    from office.db import make_sessionmaker, transaction
    from office.intake import process_item
    from office.ledgers import store_inbound
    from office.models import AuditEntry, InboxStatus

    home.mkdir(parents=True)
    engine = fresh_database(_url(args, home))
    try:
        factory = make_sessionmaker(engine)
        _practice(factory)
        with transaction(factory) as session:
            item, _ = store_inbound(
                session,
                source="file:bench.csv",
                key=hashlib.sha256(body).hexdigest(),
                body=body,
                content_type="text/csv",
            )
            item_id = item.id
        cpu = time.process_time()
        started = time.perf_counter()
        result = process_item(factory, item_id, now=NOW)
        wall_s = time.perf_counter() - started
        import_cpu_s = time.process_time() - cpu
        assert result.status is InboxStatus.PROCESSED, result.reason
        assert result.outcome is not None
        counts = dict(result.outcome.counts)
        with factory() as session:
            audited = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    finally:
        engine.dispose()
    bare_home = home / "bare"
    bare_home.mkdir()
    engine = fresh_database(_url(args, bare_home))
    try:
        _practice(make_sessionmaker(engine))
        cpu = time.process_time()
        bare_s = _bare(engine, body)
        bare_cpu_s = time.process_time() - cpu
    finally:
        engine.dispose()
    return {
        "wall_s": wall_s,
        "bare_s": bare_s,
        "ratio_vs_bare": bare_s / wall_s,
        "import_cpu_s": import_cpu_s,
        "bare_cpu_s": bare_cpu_s,
        "ratio_cpu_vs_bare": bare_cpu_s / import_cpu_s,
        "applied": counts.get("applied", 0),
        "audit_entries": audited,
    }


_STATE = re.compile(r"[A-Z]{2}")
_ZIP = re.compile(r"\d{5}(-\d{4})?")


def _bare(engine: Engine, body: bytes) -> float:
    """Read, validate with the same libraries, insert with executemany: nothing else."""
    import phonenumbers
    from email_validator import validate_email
    from sqlalchemy import insert, select

    from office.models import Coverage, Patient, Payer

    started = time.perf_counter()
    text = body.decode("utf-8-sig")
    patients, coverages = [], []
    today = NOW.date()
    oldest = today.replace(year=today.year - 120)
    for row in csv.DictReader(io.StringIO(text, newline="")):
        phone = phonenumbers.format_number(
            phonenumbers.parse(row["phone"], "US"), phonenumbers.PhoneNumberFormat.E164
        )
        email = validate_email(row["email"], check_deliverability=False).normalized
        born = date.fromisoformat(row["date_of_birth"])
        assert oldest <= born <= today
        assert _STATE.fullmatch(row["state"])
        assert _ZIP.fullmatch(row["postal_code"])
        effective = date.fromisoformat(row["effective_from"])
        patients.append(
            {
                "mrn": row["mrn"],
                "first_name": row["first_name"].strip(),
                "last_name": row["last_name"].strip(),
                "date_of_birth": born,
                "sex": row["sex"],
                "phone": phone,
                "email": email,
                "address_line1": row["address_line1"],
                "city": row["city"],
                "state": row["state"],
                "postal_code": row["postal_code"],
                "language": "en",
            }
        )
        coverages.append(
            {
                "member_id": row["member_id"],
                "group_number": row["group_number"],
                "effective_from": effective,
                "relationship_code": row["relationship"],
                "rank": 1,
            }
        )
    with engine.begin() as connection:
        payer_id = connection.scalar(select(Payer.id).where(Payer.payer_code == "60054"))
        ids = connection.execute(
            insert(Patient).returning(Patient.id, sort_by_parameter_order=True), patients
        ).scalars()
        for coverage, patient_id in zip(coverages, ids, strict=True):
            coverage["patient_id"] = patient_id
            coverage["payer_id"] = payer_id
        connection.execute(insert(Coverage), coverages)
    return time.perf_counter() - started


async def _mllp(args: argparse.Namespace, home: Path) -> float:
    """Seconds to send `mllp_n` ADT A08, one connection, each after the previous ACK."""
    from integrations.hl7 import serve_mllp
    from integrations.hl7.samples import SamplePatient, adt_message
    from integrations.hl7.sender import MllpSender
    from office.db import make_sessionmaker
    from office.settings import load_settings

    url = _url(args, home)
    engine = fresh_database(url)
    settings = load_settings(
        home=home / "office",
        database_url=url,
        secret_key="bench-link-secret-32-bytes-or-longer",  # noqa: S106 - a throwaway key
        mllp_host="127.0.0.1",
        mllp_port=0,
    )
    messages = [
        adt_message("A08", f"B-{i}", SamplePatient(mrn=f"B{i:07d}"), sent_at=NOW)
        for i in range(args.mllp_n)
    ]
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve_mllp(
            settings,
            make_sessionmaker(engine),
            None,
            ready=lambda _h, port: ready.set_result(port),
        )
    )
    try:
        port = await asyncio.wait_for(ready, timeout=60)
        async with MllpSender("127.0.0.1", port) as sender:
            started = time.perf_counter()
            for message in messages:
                ack = await sender.send(message)
                assert ack.accepted, ack
            elapsed = time.perf_counter() - started
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        engine.dispose()
    return elapsed
