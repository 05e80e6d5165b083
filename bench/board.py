"""Benchmark: `python bench/run.py board [--n 10000] [--rounds 7] [--database-url URL]`.

The staff board's pages with `n` open work items (one per visit, each visit its own
patient, in two clinics), served by `create_app` in this process through
`httpx.ASGITransport`, signed in as the office manager (who sees every item; Today shows
the first 200) and as the front desk. Each page is fetched `rounds` times after one
warm-up; the medians are reported, in milliseconds, with the whole request: session check,
read model, access records (one per patient shown, written in the page's transaction),
rendering. `*_first_ms` is the first fetch (Trends draws its chart then). `cpu_ms`
holds the same medians in this process's CPU time, which other load on the machine
hardly moves; `ratio_vs_bare_cpu` compares those.

Baseline (`bare_ms`), measured in the same run: the same rows Today shows (item,
patient, first visit and clinic) fetched with one raw SQL query and rendered by a bare Jinja
template. `ratio_vs_bare` is bare / Today; `ratio_vs_budget` is the 200 ms budget / Today
(above 1: within budget).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._database import fresh_database
from bench._rounds import print_rounds

BUDGET_MS = 200.0
FIRST_MS: dict[str, float] = {}
CPU_MS: dict[str, float] = {}

BARE_SQL = """
SELECT w.id, w.kind, w.summary, w.priority, w.role, p.first_name, p.last_name, p.mrn,
       a.start_at, l.name AS clinic, l.timezone
FROM work_items w
JOIN patients p ON p.id = w.patient_id
JOIN work_item_visits v ON v.work_item_id = w.id AND v.cleared_at IS NULL
JOIN appointments a ON a.id = v.appointment_id
JOIN locations l ON l.id = a.location_id
WHERE w.status = 'open'
ORDER BY w.priority, w.role, w.due_at, w.id
LIMIT :limit
"""

BARE_TEMPLATE = """<!DOCTYPE html><html><body><h1>Today</h1>
{% for r in rows %}<div class="item"><b>{{ r.kind }}</b> {{ r.first_name }} {{ r.last_name }}
({{ r.mrn }}) {{ r.start_at }} {{ r.clinic }}<p>{{ r.summary }}</p>
<form method="post"><input type="hidden" name="csrf" value="{{ csrf }}"><input name="note">
<button>Close</button><button>Take it</button></form>
<form method="post"><input type="hidden" name="csrf" value="{{ csrf }}"><input name="reason">
<button>Dismiss</button></form>
</div>{% endfor %}</body></html>"""


def _shown() -> int:
    from app.board.pages import TODAY_LIMIT

    return TODAY_LIMIT


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-") as tmp:
        return _measure(args, Path(tmp))


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py board")
    parser.add_argument("--n", type=int, default=10_000, help="open work items")
    parser.add_argument("--rounds", type=int, default=7, help="timed fetches of each page")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be positive")
    return args


def _measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:

    from office.db import make_sessionmaker, transaction
    from office.settings import Settings
    from tests.board.practice import (
        BILLING_KIND,
        FRONT_DESK_KINDS,
        add_board_login,
        open_items,
        seed_practice,
    )

    url = args.database_url or f"sqlite:///{home / 'office.db'}"
    settings = Settings(
        home=home,
        database_url=url,
        secret_key="bench-link-secret-32-bytes-or-longer",  # type: ignore[arg-type]  # noqa: S106 - throwaway
        webhook_secret="bench-webhook-secret-32-bytes-or-longer",  # type: ignore[arg-type]  # noqa: S106
    )
    engine = fresh_database(settings.db_url)
    factory = make_sessionmaker(engine)
    started = time.perf_counter()
    with transaction(factory) as session:
        seeded = seed_practice(session, args.n)
        open_items(session, seeded, [*FRONT_DESK_KINDS, BILLING_KIND])
        add_board_login(session, "manager@bench.test", "office_manager")
        add_board_login(session, "desk@bench.test", "front_desk")
    seed_s = time.perf_counter() - started
    try:
        pages = asyncio.run(_pages(settings, factory, seeded.appointment_ids[0], args.rounds))
        bare = _bare(engine, args.rounds)
    finally:
        engine.dispose()
    today_ms = pages["today_manager"]
    cpu_share = CPU_MS["today_manager"] / today_ms
    bound = (
        "bound by the page's CPU (rendering and the read model)"
        if cpu_share >= 0.8
        else f"bound by the database and the machine's other load (CPU {cpu_share:.0%} of wall)"
    )
    print(f"board: {bound}", file=sys.stderr)
    return {
        "bound": bound,
        "n": args.n,
        "database": "postgresql" if args.database_url else "sqlite",
        "shown": _shown(),
        "rounds": args.rounds,
        "wall_s": round(today_ms / 1000, 4),
        "today_ms": today_ms,
        "today_front_desk_ms": pages["today_front_desk"],
        "today_filtered_ms": pages["today_filtered"],
        "visit_ms": pages["visit"],
        "trends_ms": pages["trends"],
        "trends_first_ms": FIRST_MS["trends"],
        "today_first_ms": FIRST_MS["today_manager"],
        "bare_ms": bare,
        "budget_ms": BUDGET_MS,
        "ratio_vs_budget": round(BUDGET_MS / today_ms, 3),
        "ratio_vs_bare": round(bare / today_ms, 3),
        "cpu_ms": CPU_MS,
        "ratio_vs_bare_cpu": round(CPU_MS["bare"] / CPU_MS["today_manager"], 3),
        "seed_s": round(seed_s, 1),
    }


async def _pages(settings: Any, factory: Any, visit_id: int, rounds: int) -> dict[str, float]:
    import httpx

    from app.webapp import create_app
    from tests.board.practice import PASSWORD

    async def no_recheck(appointment_id: int, key: str) -> str | None:
        return None

    app = create_app(settings, factory, recheck=no_recheck)
    found: dict[str, float] = {}
    transport = httpx.ASGITransport(app=app)
    for email, pages in (
        (
            "manager@bench.test",
            {
                "today_manager": "/staff/today",
                "visit": f"/staff/visits/{visit_id}",
                "trends": "/staff/trends",
                "today_filtered": "/staff/today?role=billing",
            },
        ),
        ("desk@bench.test", {"today_front_desk": "/staff/today"}),
    ):
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/staff/login")
            csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = await client.post(
                "/staff/login", data={"email": email, "password": PASSWORD, "csrf": csrf}
            )
            assert signed.status_code == 303, signed.status_code
            for name, path in pages.items():
                found[name] = await _median_ms(client, name, path, rounds)
    return found


async def _median_ms(client: Any, name: str, path: str, rounds: int) -> float:
    """The median of `rounds` fetches after a first one (kept in FIRST_MS: the chart's
    drawing is cached, so Trends' first load is the one that draws it)."""
    times = []
    cpu = []
    for n in range(rounds + 1):
        started, spent = time.perf_counter(), time.process_time()
        answer = await client.get(path)
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200, (path, answer.status_code)
        if n:
            times.append(elapsed)
            cpu.append(time.process_time() - spent)
        else:
            FIRST_MS[name] = round(elapsed * 1000, 1)
    print_rounds(
        f"board {name}",
        [{"wall_ms": t * 1000, "cpu_ms": c * 1000} for t, c in zip(times, cpu, strict=True)],
    )
    CPU_MS[name] = round(statistics.median(cpu) * 1000, 1)
    return round(statistics.median(times) * 1000, 1)


def _bare(engine: Any, rounds: int) -> float:
    from jinja2 import Environment
    from sqlalchemy import text

    template = Environment(autoescape=True).from_string(BARE_TEMPLATE)
    times = []
    cpu = []
    for n in range(rounds + 1):
        started, spent = time.perf_counter(), time.process_time()
        with engine.connect() as connection:
            rows = connection.execute(text(BARE_SQL), {"limit": _shown()}).all()
        html = template.render(rows=rows, csrf="x" * 64)
        elapsed = time.perf_counter() - started
        assert len(rows) == _shown()
        assert html
        if n:
            times.append(elapsed)
            cpu.append(time.process_time() - spent)
    CPU_MS["bare"] = round(statistics.median(cpu) * 1000, 1)
    return round(statistics.median(times) * 1000, 1)
