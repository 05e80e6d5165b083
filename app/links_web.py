"""The pages behind patients' confirm, cancel and reschedule links.

Two clicks by design: mail scanners and link previews fetch every URL in a
message, so GET only asks the question and changes nothing; the patient's
button press (a POST) records the answer. Pages are small, self-contained
HTML with no third-party assets; the token is in the URL, so responses forbid
caching and referrers.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.page_headers import PRIVATE_PAGE_HEADERS
from office.db import transaction
from office.models import utcnow
from office.reminders.links import (
    CANCELLED,
    CHANGED,
    EXPIRED,
    INVALID,
    USED,
    LinkError,
    Purpose,
    answer_link,
    view_link,
)
from office.render import date_long, time_local
from office.settings import Settings

__all__ = ["link_router"]


@dataclass(frozen=True)
class _Words:
    title: dict[str, str]
    question: dict[str, str]
    button: dict[str, str]
    done: dict[str, str]
    problems: dict[str, str]
    call: str
    call_practice: str
    heading_problem: str


_WORDS: dict[str, _Words] = {
    "en": _Words(
        title={
            "confirm": "Confirm your appointment",
            "cancel": "Cancel your appointment",
            "reschedule": "Ask for a new time",
        },
        question={
            "confirm": "Will you come to your appointment on {when}?",
            "cancel": "Do you want to cancel your appointment on {when}?",
            "reschedule": "Should we call you to find a new time for your appointment on {when}?",
        },
        button={
            "confirm": "Yes, I will be there",
            "cancel": "Yes, cancel it",
            "reschedule": "Yes, please call me",
        },
        done={
            "confirm": "Thank you. Your appointment is confirmed.",
            "cancel": "Your appointment is cancelled. Call us when you would like a new one.",
            "reschedule": "Thank you. We will call you to find a new time.",
        },
        problems={
            INVALID: "This link is not valid.",
            EXPIRED: "This link has expired.",
            USED: "This link was already used.",
            CHANGED: "This appointment has changed since the message was sent.",
            CANCELLED: "This appointment is already cancelled.",
        },
        call="Please call the office if you need help.",
        call_practice="Please call {practice} at {phone} if you need help.",
        heading_problem="This link cannot be used",
    ),
    "es": _Words(
        title={
            "confirm": "Confirme su cita",
            "cancel": "Cancele su cita",
            "reschedule": "Pida otra fecha",
        },
        question={
            "confirm": "¿Vendrá a su cita del {when}?",
            "cancel": "¿Quiere cancelar su cita del {when}?",
            "reschedule": "¿Le llamamos para buscar otra fecha para su cita del {when}?",
        },
        button={
            "confirm": "Sí, iré",
            "cancel": "Sí, cancelarla",
            "reschedule": "Sí, llámenme",
        },
        done={
            "confirm": "Gracias. Su cita está confirmada.",
            "cancel": "Su cita está cancelada. Llámenos cuando quiera otra.",
            "reschedule": "Gracias. Le llamaremos para buscar otra fecha.",
        },
        problems={
            INVALID: "Este enlace no es válido.",
            EXPIRED: "Este enlace ha caducado.",
            USED: "Este enlace ya se usó.",
            CHANGED: "Esta cita cambió después de enviar el mensaje.",
            CANCELLED: "Esta cita ya está cancelada.",
        },
        call="Llame a la oficina si necesita ayuda.",
        call_practice="Llame a {practice} al {phone} si necesita ayuda.",
        heading_problem="Este enlace no se puede usar",
    ),
}

_STATUS = {INVALID: 404, EXPIRED: 410, USED: 409, CHANGED: 409, CANCELLED: 409}


def _words(language: str) -> _Words:
    return _WORDS.get(language, _WORDS["en"])


def _page(title: str, body: str, language: str, status: int = 200) -> HTMLResponse:
    document = (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:Arial,Helvetica,sans-serif;font-size:18px;"
        "line-height:1.5;max-width:32em;margin:2em auto;padding:0 1em;color:#222}"
        "button{font-size:18px;padding:.6em 1.2em}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(document, status_code=status, headers=PRIVATE_PAGE_HEADERS)


def _problem_page(
    reason: str, language: str, practice: str | None, phone: str | None
) -> HTMLResponse:
    words = _words(language)
    text = words.problems.get(reason, words.problems[INVALID])
    if practice and phone:
        help_text = words.call_practice.format(practice=practice, phone=phone)
    else:
        help_text = words.call
    body = f"<p>{html.escape(text)}</p>\n<p>{html.escape(help_text)}</p>"
    return _page(words.heading_problem, body, language, _STATUS.get(reason, 400))


def _when(start: datetime, zone: str, language: str) -> str:
    local = start.astimezone(ZoneInfo(zone))
    lang = language if language in ("en", "es") else "en"
    return f"{date_long(local, lang)}, {time_local(local, lang)} ({local.tzname()})"


def link_router(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """Routes for `/a/{token}`: GET asks, POST answers once.

    Args:
        settings: Supplies the link keys (`Settings.link_keys()`): OFFICE_SECRET_KEY, and
            OFFICE_SECRET_KEY_PREVIOUS during a rotation, so links sent before it still work.
        factory: Sessions on the office database.
        clock: Now, as an aware datetime; tests pass a fixed one.
    """
    secret = settings.link_keys()
    router = APIRouter()

    @router.get("/a/{token}", response_class=HTMLResponse)
    async def ask(token: str) -> HTMLResponse:
        def look() -> HTMLResponse:
            with factory() as session:
                try:
                    view = view_link(session, secret, token, now=clock())
                except LinkError as exc:
                    return _problem_page(str(exc), "en", None, None)
                if view.problem is not None:
                    return _problem_page(
                        view.problem, view.language, view.practice_name, view.phone
                    )
                words = _words(view.language)
                purpose: Purpose = view.purpose
                when = _when(view.start, view.location_zone, view.language)
                body = (
                    f"<p>{html.escape(view.practice_name)}</p>\n"
                    f"<p>{html.escape(words.question[purpose].format(when=when))}</p>\n"
                    '<form method="post" action="">\n'
                    f'<button type="submit">{html.escape(words.button[purpose])}</button>\n'
                    "</form>"
                )
                return _page(words.title[purpose], body, view.language)

        return await run_in_threadpool(look)

    @router.post("/a/{token}", response_class=HTMLResponse)
    async def answer(token: str) -> HTMLResponse:
        def act() -> HTMLResponse:
            try:
                with transaction(factory) as session:
                    result = answer_link(session, secret, token, now=clock())
            except LinkError as exc:
                return _problem_page(str(exc), "en", None, None)
            if result.refused is not None:
                return _problem_page(
                    result.refused, result.language, result.practice_name, result.phone
                )
            words = _words(result.language)
            body = f"<p>{html.escape(words.done[result.purpose])}</p>"
            return _page(words.title[result.purpose], body, result.language)

        return await run_in_threadpool(act)

    return router
