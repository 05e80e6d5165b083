"""The staff board: the work queue for the people who work it, behind a login.

Server-rendered pages under /staff (Today, a visit, Trends) that work without
JavaScript; every page that shows a patient writes an access record. The accounts,
sessions and records themselves are the domain's (`office.staff_auth`); the queue's
read models and actions are `office.workqueue`'s.
"""

from __future__ import annotations

from app.board.recheck import RECHECK_DEPLOYMENT, dispatch_recheck
from app.board.router import board_router
from app.board.web import Recheck

__all__ = ["RECHECK_DEPLOYMENT", "Recheck", "board_router", "dispatch_recheck"]
