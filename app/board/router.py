"""`board_router`: the staff board's routes, mounted by the web app under /staff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from app.board.actions import add_action_routes
from app.board.mail_page import add_mail_routes
from app.board.onboarding import add_onboarding_routes
from app.board.pages import add_page_routes
from app.board.reviews import add_review_routes
from app.board.signin_routes import add_signin_routes
from app.board.web import Board, Recheck
from office.models import utcnow
from office.settings import Settings

__all__ = ["board_router"]


def board_router(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    recheck: Recheck | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """The board's routes, relative to where they are mounted (/staff).

    Args:
        settings: The session timeouts and the public URL (https there means Secure cookies).
        factory: Sessions on the office database.
        recheck: Starts an eligibility check for one visit; Prefect's deployment when None.
        clock: Now, as an aware datetime; tests pass one they control.
    """
    if recheck is None:
        from app.board.recheck import dispatch_recheck

        recheck = dispatch_recheck
    board = Board(settings=settings, factory=factory, clock=clock, recheck=recheck)
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/staff/today", status_code=303)

    add_signin_routes(router, board)
    add_page_routes(router, board)
    add_action_routes(router, board)
    add_mail_routes(router, board)
    add_onboarding_routes(router, board)
    add_review_routes(router, board)
    return router
