"""The web app: signed webhooks in (stored first, handed to Prefect after), and the
confirm/cancel pages patients reach from their reminders.

`create_app` is the only way in; it does no work at import time. A payload is
in the inbox before the sender hears 202, and a pending item never depends on
Prefect being up: the sweeper in `office serve` dispatches whatever is left.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.board import Recheck, board_router
from app.links_web import link_router
from app.onboarding_links_web import onboarding_link_router
from office.db import transaction
from office.ledgers import store_inbound
from office.settings import Settings
from office.signing import is_idempotency_key, is_webhook_source, verify_webhook

__all__ = ["MAX_BODY_BYTES", "Dispatcher", "create_app"]

MAX_BODY_BYTES = 1024 * 1024
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
# Printable ASCII, at most as long as the inbox column (InboxItem.content_type, 120).
_CONTENT_TYPE = re.compile(r"[ -~]{1,120}")

# Hands a stored item (id, dedupe key) to whatever processes it; returns a run id, or raises.
Dispatcher = Callable[[int, str], Awaitable[str | None]]

log = logging.getLogger("office.web")


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    dispatcher: Dispatcher | None = None,
    recheck: Recheck | None = None,
) -> FastAPI:
    """Build the ASGI app around an existing session factory and an optional dispatcher
    (stored webhooks) and `recheck` (the staff board's eligibility button; Prefect's when None).
    """
    secret = settings.require_webhook_secret()
    # No schema or docs pages: the public app tells a stranger nothing about its routes.
    app = FastAPI(title="officeflows intake", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.factory = factory
    app.include_router(link_router(settings, factory))
    app.include_router(onboarding_link_router(settings, factory))
    app.include_router(board_router(settings, factory, recheck=recheck), prefix="/staff")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        def ping() -> None:
            with factory() as session:
                session.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:
            log.exception("health check: database unreachable")
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/schemas/intake-form.json")
    async def intake_form_schema() -> JSONResponse:
        """The `intake-form` webhook's JSON Schema, generated from the model its handler reads."""
        from office.records.forms import form_schema

        return JSONResponse(form_schema(), media_type="application/schema+json")

    @app.post("/webhooks/{source}")
    async def webhook(source: str, request: Request) -> JSONResponse:
        if not is_webhook_source(source):
            return _error(404, "unknown webhook source")
        declared = request.headers.get("content-length")
        if declared is not None and _CONTENT_LENGTH.fullmatch(declared) is None:
            return _error(400, "Content-Length is not a number")
        if declared is not None and int(declared) > MAX_BODY_BYTES:
            return _error(413, "body larger than 1 MiB")
        header_key = request.headers.get("idempotency-key") or ""
        if header_key and not is_idempotency_key(header_key):
            return _error(400, "Idempotency-Key must be 1-200 visible ASCII characters, no '.'")
        content_type = request.headers.get("content-type")
        if content_type is not None and _CONTENT_TYPE.fullmatch(content_type) is None:
            return _error(400, "Content-Type must be 1-120 printable ASCII characters")
        try:
            body = await _read_limited(request)
        except _TooLarge:
            return _error(413, "body larger than 1 MiB")
        if not verify_webhook(
            secret,
            request.headers.get("x-office-timestamp"),
            request.headers.get("x-office-signature"),
            source=source,
            key=header_key,
            body=body,
        ):
            return _error(401, "bad signature or stale timestamp")
        key = header_key or hashlib.sha256(body).hexdigest()

        def store() -> tuple[int, bool, int]:
            with transaction(factory) as session:
                item, created = store_inbound(
                    session,
                    source=f"webhook:{source}",
                    key=key,
                    body=body,
                    content_type=content_type,
                )
                session.flush()
                return item.id, created, item.attempts

        inbox_id, created, attempts = await run_in_threadpool(store)
        if not created:
            return JSONResponse({"inbox_id": inbox_id, "duplicate": True}, status_code=200)
        run_id = None
        if dispatcher is not None:
            try:
                run_id = await dispatcher(inbox_id, f"inbox-{inbox_id}-{attempts}")
            except Exception:
                # Stored is what we promised; the sweeper dispatches it later.
                log.warning("inbox %s stored; dispatch deferred to the sweeper", inbox_id)
        return JSONResponse(
            {"inbox_id": inbox_id, "status": "accepted", "flow_run_id": run_id}, status_code=202
        )

    return app


async def _read_limited(request: Request) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
