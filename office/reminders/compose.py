"""Composing one outbox row's message: the email (text, HTML, calendar) or the text message.

The same row always gives the same bytes: the Message-ID, the MIME boundaries,
the calendar's DTSTAMP and the Date header all derive from the row, so a message
sent again after an interrupted run is the one sent before, and the helper
process that builds emails ahead (`prebuild`) builds exactly what the send loop
would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formataddr
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from office.ics import appointment_uid, build_ics
from office.messages import Invitation, address_domain, invitation_wire, message_id_for
from office.models import Channel
from office.reminders.links import link_urls
from office.reminders.policy import visit_label
from office.reminders.rows import KINDS
from office.render import LANGUAGES, render

if TYPE_CHECKING:
    from office.contracts.mail import Wire
    from office.reminders.visits import Visit
    from office.settings import Settings

__all__ = ["Draft", "compose_email", "compose_sms", "email_parts"]


@dataclass(frozen=True, slots=True)
class Draft:
    """One outbox row's message, with everything composing it reads."""

    item_id: int
    key: str
    kind: str
    detail: dict[str, Any]
    created_at: datetime
    recipient: str
    visit: Visit

    @property
    def language(self) -> str:
        return str(self.detail.get("language") or self.visit.language)


def compose_email(draft: Draft, settings: Settings, secret: str) -> Wire:
    """The row's email as it goes on the wire, the same bytes wherever and whenever it is built."""
    return invitation_wire(**email_parts(draft, settings, secret))


def email_parts(draft: Draft, settings: Settings, secret: str) -> Invitation:
    """What the row's email says: its headers, its text and HTML, its calendar file.

    `office.messages.build_email(**parts)` makes the same message an `EmailMessage`.
    """
    visit = draft.visit
    context = _context(draft, settings, secret, channel=Channel.EMAIL)
    base = f"reminders/{draft.language}/{draft.kind}"
    subject = " ".join(render(f"{base}.subject.txt.j2", **context).split())
    text = render(f"{base}.txt.j2", **context) + "\n"
    html = render(f"{base}.html.j2", **context) + "\n"
    domain = visit.mail_domain or address_domain(settings.mail_from)
    method: Literal["REQUEST", "CANCEL"] = "CANCEL" if draft.kind == "cancellation" else "REQUEST"
    label = str(context["visit_label"])
    ics = build_ics(
        uid=appointment_uid(visit.appointment_id, domain),
        sequence=int(draft.detail.get("version", visit.version)),
        start_utc=visit.start,
        end_utc=visit.end,
        tz=visit.location_zone,
        summary=f"{label[:1].upper()}{label[1:]} - {visit.practice_name}",
        location=f"{visit.location_name}, {visit.location_address}".strip(", "),
        organizer_email=settings.mail_from,
        organizer_name=visit.practice_name,
        attendee_email=draft.recipient,
        method=method,
        dtstamp=draft.created_at,
    )
    return Invitation(
        message_id=message_id_for(draft.key, domain),
        sender=formataddr((visit.practice_name, settings.mail_from)),
        to=draft.recipient,
        subject=subject,
        text=text,
        html=html,
        ics=ics,
        method=method,
        date=draft.created_at,
    )


def compose_sms(draft: Draft, settings: Settings, secret: str) -> str:
    """The row's text message; check it with `office.messages.sms_fits` before sending."""
    context = _context(draft, settings, secret, channel=Channel.SMS)
    return render(f"reminders/{draft.language}/{draft.kind}.sms.txt.j2", **context).strip()


def _context(draft: Draft, settings: Settings, secret: str, *, channel: Channel) -> dict[str, Any]:
    """The variables the reminder templates receive (see `office.render`), and no others."""
    visit, language = draft.visit, draft.language
    if draft.kind not in KINDS:
        raise ValueError(f"unknown reminder kind {draft.kind!r}")
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    location_zone = ZoneInfo(visit.location_zone)
    when_local = visit.start.astimezone(location_zone)
    # Texts are read on lock screens and shared phones: the neutral word only.
    label = visit_label(
        sensitive=visit.sensitive or channel is Channel.SMS,
        type_name=visit.type_name,
        language=language,
    )
    old = draft.detail.get("old_start")
    return {
        "practice_name": visit.practice_name,
        "location_name": visit.location_name,
        "location_address": visit.location_address,
        "location_phone": visit.location_phone,
        "patient_first_name": visit.first_name,
        "when_local": when_local,
        "tz_abbrev": when_local.tzname() or "",
        "visit_label": label,
        "bring_insurance_card": visit.bring_card,
        "language": language,
        **link_urls(
            settings.public_url, secret, appointment_id=visit.appointment_id, start=visit.start
        ),
        "old_when_local": (
            datetime.fromtimestamp(int(old), UTC).astimezone(location_zone) if old else when_local
        ),
    }
