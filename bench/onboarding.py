"""Benchmark: `python bench/run.py onboarding [--sizes 200,2000] [--rounds 5] [--database-url URL]`.

A practice of `n` new staff (roles in turn, each with a full checklist built by
`start_onboarding`, as the flow builds them: about 15 items each), all starting Monday
7 December 2026; the daily follow-up (`office.onboarding.follow_up`, the code the
onboarding-followup flow's task runs) decides every open item's reminder, escalation,
release or renewal on Wednesday 9 December, when items are due soon, overdue at each step
of the ladder, and blocked. Each round runs in a transaction that is rolled back, so every
round decides the same state; one warm-up round first, then the median of `rounds`, in wall
and CPU seconds (this process; other load on the machine hardly moves CPU time).

Reported per size: items, the median seconds, items/s; `ratio_linear` is the per-item cost
(CPU) at the largest size over the per-item cost at the smallest (1.0: perfectly linear;
the issue asks for at most 1.3; `ratio_linear_wall` is the same in wall time, which load
on the machine moves). Baseline (`bare_s`): one raw SQL read of the same open
items' columns at the largest size, nothing decided or written; `ratio_vs_bare` is bare /
follow-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench._database import fresh_database

ROUNDS = 5
DAY = date(2026, 12, 9)
NOW = datetime(2026, 12, 9, 12, 45, tzinfo=UTC)  # 06:45 in Chicago, the schedule's time


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-") as tmp:
        results = [_measure(n, args, Path(tmp)) for n in args.sizes]
    small, large = results[0], results[-1]
    per_item = {r["n"]: r["cpu_s"] / r["items"] for r in results}
    per_item_wall = {r["n"]: r["wall_s"] / r["items"] for r in results}
    return {
        "n": large["n"],
        "items": large["items"],
        "wall_s": large["wall_s"],
        "cpu_s": large["cpu_s"],
        "items_per_s": large["items_per_s"],
        "bare_s": large["bare_s"],
        "ratio_vs_bare": round(large["bare_s"] / large["wall_s"], 3),
        "ratio_linear": round(per_item[large["n"]] / per_item[small["n"]], 3),
        "ratio_linear_wall": round(per_item_wall[large["n"]] / per_item_wall[small["n"]], 3),
        "sizes": results,
        "database": "postgresql" if args.database_url else "sqlite",
        "rounds": args.rounds,
    }


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py onboarding")
    parser.add_argument(
        "--sizes",
        default="200,2000",
        type=lambda text: [int(part) for part in text.split(",")],
        help="staff counts, smallest first",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    if len(args.sizes) < 2 or sorted(args.sizes) != args.sizes or args.sizes[0] < 1:
        parser.error("--sizes needs two or more increasing staff counts")
    return args


def _measure(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from office.db import make_sessionmaker, transaction
    from office.models import ChecklistItem, ItemStatus
    from office.onboarding import FollowupPlan, follow_up, load_calendar
    from office.onboarding.directory import load_directory
    from tests.onboarding.practice import add_hires, seed_team

    url = args.database_url or f"sqlite:///{tmp / f'onboarding-{n}.db'}"
    engine = fresh_database(url)
    factory = make_sessionmaker(engine)
    started = time.perf_counter()
    with transaction(factory) as session:
        team = seed_team(session)
        add_hires(session, team, n)
    seed_s = time.perf_counter() - started
    plan = FollowupPlan(DAY, NOW)
    wall: list[float] = []
    cpu: list[float] = []
    tally: dict[str, int] = {}
    for round_number in range(args.rounds + 1):
        with factory() as session:
            began, spent = time.perf_counter(), time.process_time()
            tally = follow_up(
                session, plan, load_calendar(session), load_directory(session)
            ).to_dict()
            session.flush()
            elapsed, used = time.perf_counter() - began, time.process_time() - spent
            session.rollback()
        if round_number:  # the first round warms caches up
            wall.append(elapsed)
            cpu.append(used)
    bare: list[float] = []
    columns = select(
        ChecklistItem.id,
        ChecklistItem.checklist_id,
        ChecklistItem.due_on,
        ChecklistItem.depends_on,
        ChecklistItem.escalation_level,
        ChecklistItem.owner_staff_id,
    ).where(ChecklistItem.status == ItemStatus.OPEN)
    for _ in range(args.rounds):
        with engine.connect() as connection:
            began = time.perf_counter()
            connection.execute(columns).all()
            bare.append(time.perf_counter() - began)
    engine.dispose()
    items = tally.get("items", 0)
    wall_s = statistics.median(wall)
    return {
        "n": n,
        "items": items,
        "seed_s": round(seed_s, 1),
        "wall_s": round(wall_s, 4),
        "cpu_s": round(statistics.median(cpu), 4),
        "items_per_s": round(items / wall_s) if wall_s else None,
        "bare_s": round(statistics.median(bare), 4),
        "decided": {k: v for k, v in tally.items() if k != "items"},
    }
