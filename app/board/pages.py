"""The board's pages: Today, a visit, Trends.

Each page is one transaction: the session is resumed (or the person sent to sign in),
the queue's read model is read, and an access record is written for every patient the
page shows, before it is rendered. The read models are `office.workqueue.views`'.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.board.web import (
    SESSION_COOKIE,
    Board,
    client_address,
    id_field,
    page,
    redirect,
    refuse,
)
from office.db import transaction
from office.models import Appointment, AuditEntry, Location
from office.staff_auth import MANAGER, SignedIn, record_access, resume_session
from office.workqueue import KINDS, ROLE_LABELS, CloseReason, kind_of
from office.workqueue.chart import trend_chart_svg
from office.workqueue.views import (
    CoverageSummary,
    NotFound,
    TrendView,
    practice_zone,
    role_label,
    today,
    trends,
    visit,
)

__all__ = ["RECHECK_FIELD", "add_page_routes", "may_act", "rechecks_visit", "signed_in_page"]

# The audit entry a "re-check eligibility" press writes on the appointment.
RECHECK_FIELD = "eligibility_recheck_requested"
TODAY_LIMIT = 200  # a morning's work; the counts cover every item, filters reach the rest


def rechecks_visit(kind: str) -> bool:
    """True for kinds a new eligibility check can clear: they get the re-check button."""
    return CloseReason.CHECK_CLEAN in kind_of(kind).closes_when


def signed_in_page(
    board: Board,
    request: Request,
    build: Callable[[Session, SignedIn], Response],
) -> Response:
    """Run `build` for the signed-in person in one transaction; else go and sign in."""
    with transaction(board.factory) as session:
        viewer = resume_session(
            session, request.cookies.get(SESSION_COOKIE), now=board.clock(), policy=board.policy
        )
        if viewer is not None:
            return build(session, viewer)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = redirect(f"/staff/login?next={quote(target, safe='')}")
    board.clear_cookie(response, request, SESSION_COOKIE)
    return response


def add_page_routes(router: APIRouter, board: Board) -> None:
    """GET /today, /visits/{id}, /trends."""

    def chrome(viewer: SignedIn, here: str) -> dict[str, object]:
        return {"viewer": viewer, "role_label": role_label(viewer.role), "here": here}

    @router.get("/today", response_class=HTMLResponse)
    async def today_page(
        request: Request, clinic: str = "", role: str = "", kind: str = ""
    ) -> Response:
        clinic_id = id_field(clinic)
        role_filter = role if role in ROLE_LABELS else None
        kind_filter = kind if kind in {k.name for k in KINDS} else None

        def build(session: Session, viewer: SignedIn) -> Response:
            now = board.clock()
            view = today(
                session,
                viewer_role=viewer.role,
                viewer_staff_id=viewer.staff_id,
                clinic_id=clinic_id,
                role=role_filter,
                kind=kind_filter,
                limit=TODAY_LIMIT,
                now=now,
            )
            record_access(
                session,
                login_id=viewer.login_id,
                patient_ids=[i.patient_id for i in view.items if i.patient_id is not None],
                page="today",
                now=now,
                client=client_address(request),
            )
            clinics = session.execute(select(Location.id, Location.name).order_by(Location.name))
            filters = {
                "clinic": str(clinic_id or ""),
                "role": role_filter or "",
                "kind": kind_filter or "",
            }
            chosen = urlencode({name: value for name, value in filters.items() if value})
            here = "/staff/today" + (f"?{chosen}" if chosen else "")
            return page(
                "today.html.j2",
                view=view,
                clinics=list(clinics),
                roles=ROLE_LABELS,
                kinds=KINDS,
                filters=filters,
                return_to=here,
                may_act=lambda item: may_act(viewer, item.role, item.assignee_id),
                rechecks=rechecks_visit,
                **chrome(viewer, "today"),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.get("/visits/{appointment_id}", response_class=HTMLResponse)
    async def visit_page(request: Request, appointment_id: int) -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            now = board.clock()
            try:
                shown = visit(session, appointment_id, now=now)
            except NotFound:
                return refuse(404, "There is no such visit.")
            record_access(
                session,
                login_id=viewer.login_id,
                patient_ids=[shown.patient_id],
                page="visit",
                now=now,
                client=client_address(request),
                appointment_id=appointment_id,
            )
            requested = _recheck_pending(session, appointment_id, shown.coverage)
            zone = ZoneInfo(str(shown.starts_at.tzinfo))
            return page(
                "visit.html.j2",
                visit=shown,
                requested_at=requested.astimezone(zone) if requested else None,
                zone=zone,
                return_to=f"/staff/visits/{appointment_id}",
                may_act=lambda item: may_act(viewer, item.role, item.assignee_id),
                rechecks=rechecks_visit,
                **chrome(viewer, "visit"),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.get("/trends", response_class=HTMLResponse)
    async def trends_page(request: Request) -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            zone = practice_zone(session)
            local_today = board.clock().astimezone(ZoneInfo(zone)).date()
            view = trends(session, today=local_today, days=30, zone=zone)
            return page(
                "trends.html.j2",
                trend=view,
                chart=_chart(view),
                **chrome(viewer, "trends"),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)


@functools.lru_cache(maxsize=16)
def _chart(trend: TrendView) -> Markup:
    """The chart as inline SVG; drawing takes far longer than the page, and the same counts
    draw the same chart, so each is drawn once (until the counts change)."""
    svg = trend_chart_svg(trend)
    return Markup(svg[svg.index("<svg") :])  # noqa: S704 - drawn on the server from counts


def may_act(viewer: SignedIn, role: str, assignee_id: int | None) -> bool:
    """The office manager acts on anything; others on their role's items and their own."""
    if viewer.role == MANAGER or role == viewer.role:
        return True
    return assignee_id is not None and assignee_id == viewer.staff_id


def _recheck_pending(
    session: Session, appointment_id: int, coverage: CoverageSummary | None
) -> datetime | None:
    """When the last re-check was asked for, if no check has been answered since."""
    requested = session.scalar(
        select(AuditEntry.at)
        .where(
            AuditEntry.entity == Appointment.__tablename__,
            AuditEntry.entity_id == appointment_id,
            AuditEntry.field == RECHECK_FIELD,
        )
        .order_by(AuditEntry.at.desc())
        .limit(1)
    )
    if requested is None:
        return None
    answered = coverage.checked_at if coverage is not None else None
    if answered is not None and answered >= requested:
        return None
    return requested
