"""The pages behind the signed links in onboarding mail: `/o/{token}`, two clicks.

Like the patients' links: GET only shows the item and asks (mail scanners fetch every
URL), the owner's button press (a POST) completes it, once, through
`office.onboarding.complete_item` (via "link", audited once). Items that need a file or a
course version are completed on the board instead; the page says so and links there.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.page_headers import PRIVATE_PAGE_HEADERS
from office.db import transaction
from office.models import ChecklistItem, ItemStatus, utcnow
from office.onboarding import CompletionError, Evidence, complete_item
from office.onboarding.complete import blocked_by, evidence_dir
from office.onboarding.links import LinkError, read_item_link
from office.settings import Settings

__all__ = ["onboarding_link_router"]

_ON_BOARD = {"certificate", "course_version"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:Arial,Helvetica,sans-serif;font-size:18px;"
        "line-height:1.5;max-width:32em;margin:2em auto;padding:0 1em;color:#222}"
        "button{font-size:18px;padding:.6em 1.2em}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(document, status_code=status, headers=PRIVATE_PAGE_HEADERS)


def _problem(text: str, status: int) -> HTMLResponse:
    return _page("This link cannot be used", f"<p>{html.escape(text)}</p>", status)


def onboarding_link_router(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """Routes for `/o/{token}`: GET asks, POST completes the item once."""
    keys = settings.link_keys()
    base = settings.public_url.rstrip("/")
    router = APIRouter()

    def problem(session: Session, item: ChecklistItem | None) -> HTMLResponse | None:
        if item is None:
            return _problem("This link is not valid.", 404)
        if item.status is not ItemStatus.OPEN:
            return _problem(f"This item is already {item.status.value}.", 409)
        waiting = blocked_by(session, item)
        if waiting:
            return _problem(f"This item waits on: {'; '.join(waiting)}.", 409)
        if _ON_BOARD & set(item.evidence_required):
            board = f"{base}/staff/onboarding/items/{item.id}"
            return _page(
                item.title,
                "<p>This item needs its certificate or course version: complete it on the "
                f'staff board.</p>\n<p><a href="{html.escape(board)}">Open it on the board</a></p>',
            )
        return None

    @router.get("/o/{token}", response_class=HTMLResponse)
    async def ask(token: str) -> HTMLResponse:
        def look() -> HTMLResponse:
            try:
                item_id = read_item_link(keys, token, now=clock())
            except LinkError as exc:
                return _problem(str(exc).capitalize() + ".", 410 if "expired" in str(exc) else 404)
            with factory() as session:
                item = session.get(ChecklistItem, item_id)
                refused = problem(session, item)
                if refused is not None or item is None:
                    return refused or _problem("This link is not valid.", 404)
                signs = "signature" in item.evidence_required
                body = (
                    f"<p>Mark this item done{' and sign it' if signs else ''}?</p>\n"
                    '<form method="post" action="">\n'
                    + (
                        '<p><label>Your name <input type="text" name="signature" '
                        "required></label></p>\n"
                        if signs
                        else ""
                    )
                    + '<button type="submit">Yes, it is done</button>\n</form>'
                )
                return _page(item.title, body)

        return await run_in_threadpool(look)

    @router.post("/o/{token}", response_class=HTMLResponse)
    async def complete(token: str, request: Request) -> HTMLResponse:
        raw = (await request.body())[:4096]
        signature = (parse_qs(raw.decode("utf-8", "replace")).get("signature") or [""])[0]

        def act() -> HTMLResponse:
            now = clock()
            try:
                item_id = read_item_link(keys, token, now=now)
            except LinkError as exc:
                return _problem(str(exc).capitalize() + ".", 410 if "expired" in str(exc) else 404)
            zone = ZoneInfo(settings.practice_timezone)
            try:
                with transaction(factory) as session:
                    item = session.get(ChecklistItem, item_id, with_for_update=True)
                    refused = problem(session, item)
                    if refused is not None or item is None:
                        return refused or _problem("This link is not valid.", 404)
                    title = item.title
                    complete_item(
                        session,
                        item_id,
                        Evidence(
                            completed_on=now.astimezone(zone).date(),
                            signature=signature.strip() or None,
                        ),
                        by="link",
                        via="link",
                        now=now,
                        evidence_dir=evidence_dir(settings.home),
                    )
            except CompletionError as exc:
                return _problem(str(exc).capitalize() + ".", 409)
            return _page(title, "<p>Thank you: it is marked done.</p>")

        return await run_in_threadpool(act)

    return router
