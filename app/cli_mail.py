"""`office mail`: route the mailboxes now, try rules on a corpus, list what was routed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli_support import command_group, console, fail, settings_or_fail

__all__ = ["mail_app"]

mail_app = command_group(
    "Inbound mail: route the mailboxes, try routing rules, see what was routed."
)


@mail_app.command("route")
def route(
    mailbox: Annotated[
        str | None, typer.Option(help="Only this mailbox (a name from OFFICE_MAILBOXES).")
    ] = None,
    backlog: Annotated[
        bool,
        typer.Option(help="Importing old mail: store and route it, acknowledge none of it."),
    ] = False,
) -> None:
    """Store, route and file new mail now, through the route-mail flow."""
    settings = settings_or_fail()
    names = {box.name for box in settings.inbound_mailboxes}
    if mailbox is not None and mailbox not in names:
        fail(f"no mailbox named {mailbox!r}; configured: {', '.join(sorted(names))}")
    from app.prefect_handoff import prefect_api
    from flows.mail import route_mail
    from flows.runtime import use_office

    use_office(settings)
    with prefect_api(settings):
        counts = asyncio.run(route_mail(mailbox=mailbox or "all", backlog=backlog))
    table = Table("what", "count", title="Mail routing run")
    for name, value in counts.items():
        table.add_row(name, str(value))
    console().print(table)


@mail_app.command("test-rules")
def try_rules_command(
    maildir: Annotated[
        Path | None,
        typer.Option(
            help="A Maildir (or a folder of .eml files) to try; default: the first mailbox's."
        ),
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(help="The rules file to try; default: the one in force.")
    ] = None,
) -> None:
    """Route a corpus with the rules and print message -> rule -> queue. Changes nothing."""
    from office.mail import RulesError, load_rules, try_rules
    from office.render import TEMPLATES_DIR

    settings = settings_or_fail()
    path = rules or settings.mail_rules or TEMPLATES_DIR / "mail-rules.yaml"
    try:
        rule_set = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            console(stderr=True).print(f"error: {problem}", markup=False)
        raise typer.Exit(1) from None
    corpus = maildir or settings.mailbox_path(settings.inbound_mailboxes[0])
    if not corpus.is_dir():
        fail(f"{corpus} is not a directory")
    table = Table("message", "rule", "queue", "category", "actions", title=f"Rules from {path}")
    counts: dict[str, int] = {}
    for trial in try_rules(_corpus(corpus), rule_set):
        if trial.decision is None:
            table.add_row(trial.name, "quarantine", "front_desk", "-", trial.quarantined or "")
            counts["quarantined"] = counts.get("quarantined", 0) + 1
            continue
        decision = trial.decision
        table.add_row(
            trial.name,
            decision.rule,
            decision.queue,
            decision.category,
            ", ".join(decision.actions),
        )
        counts[decision.queue] = counts.get(decision.queue, 0) + 1
    out = console()
    out.print(table)
    out.print(
        "per queue: " + ", ".join(f"{queue} {n}" for queue, n in sorted(counts.items()))
        if counts
        else "no messages found"
    )


def _corpus(directory: Path) -> list[tuple[str, bytes]]:
    """Messages of a Maildir (new/ and cur/) or of a folder of files, by name."""
    folders = [directory / "new", directory / "cur"]
    if not any(folder.is_dir() for folder in folders):
        folders = [directory]
    found = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    found.append((path.name, path.read_bytes()))
    return found


@mail_app.command("list")
def list_routed(
    queue: Annotated[str | None, typer.Option(help="Only this queue (a role, or spam).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="Show at most this many.")] = 50,
) -> None:
    """Routed mail per queue, newest first, with the rule that routed it."""
    from office.db import make_engine, make_sessionmaker
    from office.mail import routed_mail

    settings = settings_or_fail()
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as session:
            grouped = routed_mail(
                session,
                queues=[queue] if queue else None,
                include_spam=queue == "spam",
                limit=limit,
            )
    finally:
        engine.dispose()
    if not grouped:
        console().print("no routed mail")
        return
    out = console()
    for name, items in sorted(grouped.items()):
        table = Table("id", "mailbox", "category", "rule", "from", "subject", title=name)
        for item in items:
            table.add_row(
                str(item.id),
                item.mailbox,
                item.category,
                item.rule,
                item.sender or "",
                item.subject or "",
            )
        out.print(table)
