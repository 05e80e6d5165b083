"""Benchmark: `python bench/run.py eligibility [--n 2000] [--database-url URL]`.

The real `verify_eligibility` flow, database included, checks `n` booked visits with one
payer whose clearinghouse answers after 200 ms, with at most 50 inquiries in flight. The
clearinghouse is `testkit/mock_clearinghouse.py` in its own process on loopback; the Prefect
API is a `prefect server start` process, started (and timed) before anything else.

Reported: the flow's wall time; a bare asyncio + httpx loop posting the same 270s to the same
server under the same Semaphore(50) (the 270s are built beforehand, so it is pure I/O); the
ideal, n x latency / concurrency; and both ratios (ideal / flow and bare / flow), per round and
their median over `--repeat` rounds (the goal reads on the median). With `--n` other than
2,000, also `ratio_linear`: the per-check cost at n over the per-check cost of a 2,000-visit
round run afterwards; `flow_peak_rss_mb` is this process's peak while the flow ran (the flow
runs here; seeding and the bare loop run in a child process, and on Linux the peak is started
over before the flow). `--profile` prints where the flow's time went to stderr.
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
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bench._database import fresh_database, in_child
from bench._rounds import (
    bound_by,
    own_peak_rss_mb,
    print_profile,
    print_rounds,
    reset_peak_rss,
)
from bench.prefect_api import flush_logs, prefect_server

if TYPE_CHECKING:
    from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 2, 13, 0, tzinfo=UTC)
ZONE = "America/Chicago"


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-") as tmp:
        home = Path(tmp)
        # Prefect reads its settings when first imported: point it at a private home and the
        # server started below before anything imports it.
        os.environ["PREFECT_HOME"] = str(home / "prefect")
        os.environ["OFFICE_HOME"] = str(home / "office")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        with prefect_server(home) as (api_url, server_start_s):
            os.environ["PREFECT_API_URL"] = api_url
            from testkit.mock_clearinghouse import running

            with running(latency_ms=args.latency_ms) as clearinghouse:
                return _measure(args, home, clearinghouse, server_start_s)


DEFAULT_N = 2000


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py eligibility")
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="appointments to check")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=50, help="the payer's limit")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="the payer's rate limit (per second)"
    )
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="rounds, the goal read on their median (default 3; 1 above 10,000 visits)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the flow runs")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.n <= 10_000 else 1
    if args.n < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--n, --concurrency and --repeat must be positive")
    return args


def _measure(
    args: argparse.Namespace, home: Path, clearinghouse: str, server_start_s: float
) -> dict[str, Any]:
    from flows.eligibility import verify_appointment
    from flows.runtime import use_office
    from office.settings import load_settings

    settings = load_settings(home=home / "warm-up", database_url=args.database_url)
    engine = fresh_database(settings.db_url)
    use_office(settings, engine)
    # A long-running API server has served runs before; its first requests are slow
    # (lazy imports, cold SQLite pages). One run about no such appointment warms it.
    started = time.perf_counter()
    asyncio.run(verify_appointment(10**9))
    warmup_s = time.perf_counter() - started
    engine.dispose()

    profiler = cProfile.Profile() if args.profile else None
    rounds, outcomes = [], {}
    for index in range(args.repeat):
        one, outcomes = _round(args, args.n, home / f"office-{index}", clearinghouse, profiler)
        rounds.append(one)
    middle = print_rounds("eligibility", rounds)
    ideal_s = args.n * args.latency_ms / 1000 / args.concurrency
    result: dict[str, Any] = {
        "n": args.n,
        "rounds": len(rounds),
        "wall_s": round(middle["wall_s"], 3),
        "bare_s": round(middle["bare_s"], 3),
        "ideal_s": round(ideal_s, 3),
        "ratio_vs_ideal": round(middle["ratio_vs_ideal"], 3),
        "ratio_vs_bare": round(middle["ratio_vs_bare"], 3),
        "wall_rounds_s": [round(r["wall_s"], 2) for r in rounds],
        "bare_rounds_s": [round(r["bare_s"], 2) for r in rounds],
        "ratio_vs_bare_rounds": [round(r["ratio_vs_bare"], 3) for r in rounds],
        "flow_cpu_s": round(middle["flow_cpu_s"], 2),
        "bare_cpu_s": round(middle["bare_cpu_s"], 2),
        "prefect_server_start_s": round(server_start_s, 2),
        "prefect_warmup_run_s": round(warmup_s, 2),
        "seed_s": round(middle["seed_s"], 2),
        "database": "postgresql" if args.database_url else "sqlite",
        "per_check_ms": round(middle["wall_s"] / args.n * 1000, 3),
        "outcomes": {k: v for k, v in sorted(outcomes.items()) if v},
    }
    if args.n != DEFAULT_N:
        # Flat cost: the per-check cost here over the per-check cost at the default size,
        # measured now, on the same server and clearinghouse.
        reference, _ = _round(args, DEFAULT_N, home / "office-reference", clearinghouse, None)
        per_check = middle["wall_s"] / args.n
        result["reference_n"] = DEFAULT_N
        result["reference_wall_s"] = round(reference["wall_s"], 3)
        result["ratio_linear"] = round(per_check / (reference["wall_s"] / DEFAULT_N), 3)
    flush_logs()
    result["flow_peak_rss_mb"] = max(r["flow_rss_mb"] for r in rounds)
    result["bound"] = bound_by(
        flow_cpu_s=middle["flow_cpu_s"],
        wall_s=middle["wall_s"],
        waits="the payer's latency and its limit of concurrent inquiries",
    )
    print(f"eligibility: {result['bound']}", file=sys.stderr)
    if profiler is not None:
        print_profile(profiler)
    return result


def _round(
    args: argparse.Namespace,
    n: int,
    home: Path,
    clearinghouse: str,
    profiler: cProfile.Profile | None,
) -> tuple[dict[str, float], dict[str, int]]:
    """A fresh practice of `n` visits and the bare loop over its 270s (in a child process),
    then the flow over it, here."""
    from flows.eligibility import verify_eligibility
    from flows.runtime import use_office
    from office.settings import load_settings

    settings = load_settings(home=home, database_url=args.database_url, practice_timezone=ZONE)
    engine = fresh_database(settings.db_url)
    seed_s, bare_s, bare_cpu_s = in_child(_seed_and_bare, settings.db_url, args, clearinghouse, n)
    use_office(settings, engine)
    reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    counts = asyncio.run(verify_eligibility(days_ahead=3, now=NOW))
    if profiler is not None:
        profiler.disable()
    wall_s, flow_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    flow_rss_mb = own_peak_rss_mb()
    engine.dispose()
    if counts["checked"] != n:
        raise RuntimeError(f"the flow checked {counts['checked']} of {n} visits")
    ideal_s = n * args.latency_ms / 1000 / args.concurrency
    one = {
        "wall_s": wall_s,
        "bare_s": bare_s,
        "ratio_vs_ideal": ideal_s / wall_s,
        "ratio_vs_bare": bare_s / wall_s,
        "flow_cpu_s": flow_cpu_s,
        "bare_cpu_s": bare_cpu_s,
        "seed_s": seed_s,
        "flow_rss_mb": flow_rss_mb,
    }
    return one, counts


# --- the practice ---------------------------------------------------------------------------


def _seed_and_bare(
    url: str, args: argparse.Namespace, clearinghouse: str, n: int
) -> tuple[float, float, float]:
    """`_seed` on its own engine, then the bare loop over its 270s: seconds to seed, and the
    bare loop's wall and CPU seconds.

    Run in a child process (see `in_child`): the bare loop's tasks and 270s, 100,000 of each
    at the large size, would otherwise stay in the flow's process as memory it never gave
    back, and be counted in the flow's peak.
    """
    from office.db import make_engine

    started = time.perf_counter()
    engine = make_engine(url)
    try:
        bodies = _seed(engine, args, clearinghouse, n)
    finally:
        engine.dispose()
    seed_s = time.perf_counter() - started
    cpu, started = time.process_time(), time.perf_counter()
    asyncio.run(_bare(clearinghouse, bodies, args.concurrency, pooled=True))
    return seed_s, time.perf_counter() - started, time.process_time() - cpu


def _seed(engine: Engine, args: argparse.Namespace, clearinghouse: str, n: int) -> list[bytes]:
    """n patients, each with a primary coverage and one visit in the next three days.

    Returns the 270 each visit's check will send, for the bare loop.
    """
    from sqlalchemy import func, insert, select

    from integrations.x12 import build_270
    from office.db import make_sessionmaker, transaction
    from office.eligibility import EligibilityRequest, Person, new_trace
    from office.models import (
        Appointment,
        AppointmentType,
        Coverage,
        Location,
        Patient,
        Payer,
        Practice,
        Provider,
    )

    zone = ZoneInfo(ZONE)
    today = NOW.astimezone(zone).date()
    with transaction(make_sessionmaker(engine)) as session:
        practice = Practice(name="Benchmark practice")
        session.add(practice)
        session.flush()
        location = Location(practice_id=practice.id, name="Main", timezone=ZONE)
        provider = Provider(
            practice_id=practice.id, npi="1234567893", first_name="Ada", last_name="Lovelace"
        )
        kind = AppointmentType(code="office", name="Office visit", service_type_code="98")
        payer = Payer(
            name="Benchmark Health",
            payer_code="BENCH1",
            adapter="x12",
            adapter_settings={"url": clearinghouse},
            concurrency_limit=args.concurrency,
            rate_per_second=args.rate,
        )
        session.add_all([location, provider, kind, payer])
        session.flush()
        session.execute(
            insert(Patient),
            [
                {
                    "mrn": f"B{i:07d}",
                    "first_name": f"Pat{i}",
                    "last_name": "Bench",
                    "date_of_birth": date(1950, 1, 1) + timedelta(days=i % 20000),
                    "sex": "FM"[i % 2],
                    "version": 1,
                }
                for i in range(n)
            ],
        )
        first_patient = session.scalar(select(func.min(Patient.id)))
        assert first_patient is not None
        session.execute(
            insert(Coverage),
            [
                {
                    "patient_id": first_patient + i,
                    "payer_id": payer.id,
                    "member_id": f"BM{i:09d}",
                    "group_number": "G100",
                    "rank": 1,
                    "relationship_code": "18",
                    "copay_on_file": Decimal(25),
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(Appointment),
            [
                {
                    "patient_id": first_patient + i,
                    "provider_id": provider.id,
                    "location_id": location.id,
                    "appointment_type_id": kind.id,
                    "start_at": _slot(today, i, zone),
                    "version": 1,
                }
                for i in range(n)
            ],
        )
    bodies = []
    for i in range(n):
        request = EligibilityRequest(
            trace=new_trace(),
            payer_code="BENCH1",
            payer_name="Benchmark Health",
            provider_npi="1234567893",
            provider_name="Lovelace",
            provider_first_name="Ada",
            subscriber=Person(
                first_name=f"Pat{i}",
                last_name="Bench",
                date_of_birth=date(1950, 1, 1) + timedelta(days=i % 20000),
                sex="FM"[i % 2],
                member_id=f"BM{i:09d}",
                group_number="G100",
            ),
            date_of_service=today + timedelta(days=1 + i % 3),
            service_type="98",
        )
        bodies.append(build_270(request, interchange_control=i + 1).encode())
    return bodies


def _slot(today: date, index: int, zone: ZoneInfo) -> datetime:
    """Visits 1-3 days ahead, every 10 minutes from 08:00 to 17:00 local time."""
    day = today + timedelta(days=1 + index % 3)
    minute = 8 * 60 + (index // 3) % 54 * 10
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return local.astimezone(UTC)


# --- the baseline -----------------------------------------------------------------------------


async def _bare(url: str, bodies: list[bytes], concurrency: int, *, pooled: bool) -> float:
    """The same inquiries with nothing but asyncio and httpx: the floor for this machine.

    `pooled` uses the flow's transport (httpx's, split into pools of five); otherwise one
    stock pool of `concurrency` connections, to show what that split is worth.
    """
    import httpx

    from integrations.payers import PooledTransport

    slots = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/edi-x12"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = PooledTransport(concurrency) if pooled else httpx.AsyncHTTPTransport(limits=limits)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(90.0)) as client:

        async def one(body: bytes) -> None:
            async with slots:
                response = await client.post(url, content=body, headers=headers)
                response.raise_for_status()
                if not response.text.startswith("ISA"):
                    raise RuntimeError("the clearinghouse did not answer with a 271")

        started = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        return time.perf_counter() - started
