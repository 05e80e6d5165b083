"""Benchmark: `python bench/run.py mail [--n 5000] [--repeat 3] [--no-imap] [--database-url URL]`.

The real `route-mail` flow stores, parses, classifies, routes and files `n` synthetic
messages of every category (`app.demo_mail`: referrals with PDFs, lab results, forwards,
bounces, spam, ...) from a Maildir, then sends the acknowledgements routing queued (file
mailer). The Prefect API is a `prefect server start` process, started (and timed) before
anything else; the flow runs once on an empty mailbox first, as a long-lived worker would.

Reported, each the median of `--repeat` runs on a fresh database and a refilled Maildir:
the flow's wall time and messages per second; a bare stdlib parse of the same files
(`BytesParser(policy=policy.default)`, read and parse, nothing else: `bare_s`) and
`ratio_vs_bare` (bare / flow); `bare_compat32_s`, the same with `compat32`, for scale.
The IMAP path: the same messages appended to a real Dovecot on loopback
(`testkit/dovecot.py`; appending is timed apart), then fetched, stored, routed and moved
by the same flow: `imap_wall_s`, `imap_msg_per_s`. The machine is shared: every figure is
the median, with the spread in `*_runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._database import fresh_database
from bench._rounds import bound_by, print_rounds
from bench.prefect_api import flush_logs, prefect_server

if TYPE_CHECKING:
    from office.settings import Settings

NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
MAILBOX = "front-desk"
ADDRESS = "frontdesk@riverbend.test"


def run(argv: list[str]) -> dict[str, Any]:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="officeflows-bench-mail-") as tmp:
        home = Path(tmp)
        os.environ["PREFECT_HOME"] = str(home / "prefect")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        from app.demo_mail import synthetic_mail

        started = time.perf_counter()
        corpus = synthetic_mail(args.n, mailbox_address=ADDRESS, now=NOW)
        generate_s = time.perf_counter() - started
        with prefect_server(home) as (api_url, server_start_s):
            os.environ["PREFECT_API_URL"] = api_url
            result = _measure(args, home, corpus)
            flush_logs()
        result.update(server_start_s=round(server_start_s, 2), generate_s=round(generate_s, 2))
        return result


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py mail")
    parser.add_argument("--n", type=int, default=5000, help="messages in the mailbox")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; medians reported")
    parser.add_argument("--no-imap", action="store_true", help="skip the Dovecot path")
    parser.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be positive")
    return args


def _measure(
    args: argparse.Namespace, home: Path, corpus: list[tuple[str, bytes]]
) -> dict[str, Any]:
    maildir_runs: list[float] = []
    bare_runs: list[float] = []
    compat_runs: list[float] = []
    rounds: list[dict[str, float]] = []
    counts: dict[str, int] = {}
    for attempt in range(args.repeat):
        run_home = home / f"maildir-{attempt}"
        settings = _settings(run_home, args.database_url)

        def fill(settings: Settings = settings) -> None:
            files = _fill(settings, corpus)
            # Both read the same files from a warm page cache, as the flow does next.
            bare_runs.append(_bare(files, policy.default))
            compat_runs.append(_bare(files, policy.compat32))

        wall, cpu, counts = _flow(settings, fill)
        maildir_runs.append(wall)
        _check(args.n, counts)
        shutil.rmtree(run_home, ignore_errors=True)
        rounds.append(
            {
                "wall_s": wall,
                "msg_per_s": args.n / wall,
                "bare_s": bare_runs[-1],
                "ratio_vs_bare": bare_runs[-1] / wall,
                "flow_cpu_s": cpu,
            }
        )
    middle = print_rounds("mail", rounds)
    wall_s = middle["wall_s"]
    bare_s = middle["bare_s"]
    result: dict[str, Any] = {
        "n": args.n,
        "rounds": len(rounds),
        "wall_s": round(wall_s, 3),
        "msg_per_s": round(args.n / wall_s, 1),
        "bare_s": round(bare_s, 3),
        "ratio_vs_bare": round(middle["ratio_vs_bare"], 3),
        "flow_cpu_s": round(middle["flow_cpu_s"], 3),
        "bare_compat32_s": round(statistics.median(compat_runs), 3),
        "wall_s_runs": [round(w, 2) for w in maildir_runs],
        "bare_s_runs": [round(b, 2) for b in bare_runs],
        "routed": sum(v for k, v in counts.items() if k.split(":")[-1] in _FIRST),
        "acknowledged": counts.get("send_mail_ack:sent", 0),
        "database": "postgresql" if args.database_url else "sqlite",
    }
    result["bound"] = bound_by(
        flow_cpu_s=middle["flow_cpu_s"], wall_s=wall_s, waits="the database's commits"
    )
    print(f"mail: {result['bound']}", file=sys.stderr)
    if not args.no_imap:
        result.update(_imap(args, home, corpus))
    return result


_FIRST = ("route", "triage", "spam", "quarantine")


def _settings(home: Path, database_url: str | None) -> Settings:
    from office.settings import load_settings

    return load_settings(home=home, database_url=database_url, mail_from="reminders@riverbend.test")


def _fill(settings: Settings, corpus: list[tuple[str, bytes]]) -> list[Path]:
    from integrations.mailbox import deliver

    path = settings.mailbox_path(settings.inbound_mailboxes[0])
    return [deliver(path, key, raw) for key, raw in corpus]


def _bare(files: list[Path], chosen: Any) -> float:
    """Read and parse each file with the stdlib parser, nothing else."""
    parser = BytesParser(policy=chosen)
    started = time.perf_counter()
    for path in files:
        parser.parsebytes(path.read_bytes())
    return time.perf_counter() - started


def _flow(settings: Settings, fill: Any) -> tuple[float, float, dict[str, int]]:
    """A warm-up run of route-mail on an empty mailbox, `fill()`, then the timed run."""
    from flows.mail import route_mail
    from flows.runtime import use_office

    engine = fresh_database(settings.db_url)
    try:
        use_office(settings, engine)
        name = settings.inbound_mailboxes[0].name
        asyncio.run(route_mail(mailbox=name, now=NOW))
        fill()
        started, cpu = time.perf_counter(), time.process_time()
        counts = asyncio.run(route_mail(mailbox=name, now=NOW))
        return time.perf_counter() - started, time.process_time() - cpu, counts
    finally:
        engine.dispose()


def _check(n: int, counts: dict[str, int]) -> None:
    """Every message stored once and decided; a benchmark that loses mail measures nothing."""
    stored = counts.get("stored_stored", 0)
    decided = sum(v for k, v in counts.items() if k.split(":")[-1] in _FIRST)
    if stored != n or decided != n:
        raise RuntimeError(f"expected {n} stored and routed, got {stored} and {decided}")


def _imap(args: argparse.Namespace, home: Path, corpus: list[tuple[str, bytes]]) -> dict[str, Any]:
    from testkit.dovecot import dovecot_available, dovecot_server

    if not dovecot_available():
        return {"imap": "dovecot not installed"}
    runs: list[float] = []
    appends: list[float] = []
    for attempt in range(args.repeat):
        run_home = home / f"imap-{attempt}"
        with dovecot_server() as server:
            settings = _settings(run_home, args.database_url).model_copy(
                update={"mailboxes": [server.mailbox_settings(MAILBOX, address=ADDRESS)]}
            )

            def fill(server: Any = server) -> None:
                started = time.perf_counter()
                _append(server, [raw for _, raw in corpus])
                appends.append(time.perf_counter() - started)

            wall, _, counts = _flow(settings, fill)
            _check(args.n, counts)
            if server.count() != 0 or server.count("Routed") != args.n:
                raise RuntimeError("the IMAP server does not hold every message in Routed")
            runs.append(wall)
        shutil.rmtree(run_home, ignore_errors=True)
    wall_s = statistics.median(runs)
    for index, wall in enumerate(runs, 1):
        print(f"mail imap round {index}: wall_s {wall:.3f}", file=sys.stderr)
    print(f"mail imap median of {len(runs)}: wall_s {wall_s:.3f}", file=sys.stderr)
    return {
        "imap_wall_s": round(wall_s, 3),
        "imap_msg_per_s": round(args.n / wall_s, 1),
        "imap_wall_s_runs": [round(w, 2) for w in runs],
        "imap_append_s": round(statistics.median(appends), 2),
    }


def _append(server: Any, messages: list[bytes]) -> None:
    client = server.client()
    try:
        for start in range(0, len(messages), 500):
            client.multiappend("INBOX", messages[start : start + 500])
    finally:
        client.logout()
