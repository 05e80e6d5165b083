"""The board's Reviews: record changes held for a person, compared and decided on one page.

A possible duplicate shows the incoming record beside each candidate with the match's
score and each field's part of it; a patient's own edit or a stale update shows the
fields on file beside the proposed ones; a merge names the survivor and the retired
record. Approve and reject go through `office.records.review.decide_review`, the same
path as `office records review`, so the change is audited as the person and its work
item closes. Every patient a page shows gets an access record.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.board.actions import NOTE_LIMIT
from app.board.pages import may_act, signed_in_page
from app.board.signin_routes import CSRF_REFUSED
from app.board.web import (
    Board,
    client_address,
    csrf_ok,
    form_fields,
    id_field,
    page,
    redirect,
    refuse,
)
from office.models import Patient, RecordReview, ReviewStatus, WorkItem, WorkStatus
from office.records.review import (
    ReviewError,
    candidate_lines,
    change_lines,
    decide_review,
    pending_reviews,
)
from office.records.write import REVIEW_ENTITY
from office.staff_auth import SignedIn, record_access
from office.workqueue import kind_of
from office.workqueue.views import role_label

__all__ = ["REVIEWS_LIMIT", "add_review_routes"]

REVIEWS_LIMIT = 200


def _decider(session: Session, viewer: SignedIn, review: RecordReview) -> bool:
    """Who may decide: the kind's role (front desk; the manager for merges), the person
    the review's work item is assigned to, and the office manager."""
    assignee = session.scalar(
        select(WorkItem.assignee_id).where(
            WorkItem.entity == REVIEW_ENTITY,
            WorkItem.entity_id == review.id,
            WorkItem.status == WorkStatus.OPEN,
        )
    )
    return may_act(viewer, kind_of(review.kind).role, assignee)


def _by(viewer: SignedIn) -> str:
    return f"{viewer.staff_id}" if viewer.staff_id is not None else f"login:{viewer.login_id}"


def add_review_routes(router: APIRouter, board: Board) -> None:
    """GET /reviews, /reviews/{id}; POST /reviews/{id}/{approve,reject}."""

    def chrome(viewer: SignedIn) -> dict[str, object]:
        return {"viewer": viewer, "role_label": role_label(viewer.role), "here": "reviews"}

    @router.get("/reviews", response_class=HTMLResponse)
    async def reviews_page(request: Request) -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            reviews = pending_reviews(session, limit=REVIEWS_LIMIT)
            ids = {r.patient_id for r in reviews if r.patient_id is not None}
            names = {
                row.id: (f"{row.first_name} {row.last_name}", row.mrn)
                for row in session.execute(
                    select(Patient.id, Patient.first_name, Patient.last_name, Patient.mrn).where(
                        Patient.id.in_(ids)
                    )
                )
            }
            record_access(
                session,
                login_id=viewer.login_id,
                patient_ids=sorted(names),
                page="reviews",
                now=board.clock(),
                client=client_address(request),
            )
            return page(
                "reviews.html.j2",
                reviews=reviews,
                names=names,
                title_of=lambda kind: kind_of(kind).title,
                **chrome(viewer),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.get("/reviews/{review_id}", response_class=HTMLResponse)
    async def review_page(request: Request, review_id: int) -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            review = session.get(RecordReview, review_id)
            if review is None:
                return refuse(404, "There is no such review.")
            patient = session.get(Patient, review.patient_id) if review.patient_id else None
            candidates = candidate_lines(session, review)
            shown = {c.patient_id for c in candidates} | ({patient.id} if patient else set())
            record_access(
                session,
                login_id=viewer.login_id,
                patient_ids=sorted(shown),
                page="review",
                now=board.clock(),
                client=client_address(request),
            )
            return page(
                "review.html.j2",
                review=review,
                kind=kind_of(review.kind),
                patient=patient,
                changes=change_lines(review),
                candidates=candidates,
                pending=review.status is ReviewStatus.PENDING,
                may_decide=_decider(session, viewer, review),
                **chrome(viewer),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.post("/reviews/{review_id}/{decision}", response_class=HTMLResponse)
    async def decide(request: Request, review_id: int, decision: str) -> Response:
        if decision not in {"approve", "reject"}:
            return refuse(404, "There is no such decision.")
        fields = await form_fields(request)

        def build(session: Session, viewer: SignedIn) -> Response:
            if fields is None or not csrf_ok(viewer, fields):
                return refuse(403, CSRF_REFUSED)
            review = session.get(RecordReview, review_id)
            if review is None:
                return refuse(404, "There is no such review.")
            if not _decider(session, viewer, review):
                return refuse(403, "This review belongs to another role; ask its owner.")
            note = fields.get("note", "").strip()[:NOTE_LIMIT] or None
            try:
                with session.begin_nested():
                    decide_review(
                        session,
                        review_id,
                        approve=decision == "approve",
                        by=_by(viewer),
                        now=board.clock(),
                        patient_id=id_field(fields.get("patient")),
                        note=note,
                    )
            except ReviewError as exc:
                return refuse(409, str(exc))
            return redirect(f"/staff/reviews/{review_id}")

        return await run_in_threadpool(signed_in_page, board, request, build)
