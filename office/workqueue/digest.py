"""The morning digest: each role lead's counts, what is overdue, the trend, a link to the board.

Minimum necessary: the message carries counts, kinds and a link, never a patient's name,
a visit or anything a patient wrote; the person follows the link and signs in to see who.
A role lead is a staff member with `role_lead` set, active or about to start; the office
manager's digest counts every role, anyone else's their own. Overdue onboarding and
offboarding checklist items are counted the same way (by the owning role).

`queue_digests` records one outbox row per lead and practice-local day (key
`work-digest:<date>:<staff id>`), with the counts and the trend in the row itself, so a
second run that day adds nothing and a resend builds the same message. `compose_digest`
builds it, with the trend chart as an inline PNG (Content-ID), for
`office.mailing.send_outbox`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, formataddr
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.ledgers.outbox import OutboxRow, enqueue_outbox
from office.mailing.send import ComposeError, Composer, Outgoing
from office.messages import POLICY, address_domain, message_id_for
from office.models import Channel, OutboxItem, OutboxStatus, Practice, Staff, StaffStatus
from office.onboarding.views import overdue_by_owner
from office.render import render
from office.workqueue.chart import trend_chart_png
from office.workqueue.kinds import MANAGER_ROLE, PRIORITY_LABELS, ROLE_LABELS
from office.workqueue.views import DayCount, KindCount, TrendView, counts, trends

__all__ = [
    "DIGEST_KIND",
    "DigestPlan",
    "Lead",
    "compose_digest",
    "digest_composers",
    "leads",
    "queue_digests",
]

DIGEST_KIND = "work_digest"
_WORKING = (StaffStatus.ACTIVE, StaffStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Lead:
    staff_id: int
    role: str
    email: str


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """What one morning's digests are built from: the practice's day and settings."""

    now: datetime
    zone: str  # the practice's zone: its day names the digest
    board_url: str
    notes_as_tasks: Collection[str] = ()
    trend_days: int = 30


def leads(session: Session) -> list[Lead]:
    """The role leads who get a digest, by staff id."""
    rows = session.execute(
        select(Staff.id, Staff.role, Staff.email)
        .where(Staff.role_lead.is_(True), Staff.status.in_(_WORKING))
        .order_by(Staff.id)
    )
    return [Lead(staff_id, role, email) for staff_id, role, email in rows.tuples()]


def queue_digests(session: Session, plan: DigestPlan) -> int:
    """Record today's digest for every lead that has none yet; returns how many leads."""
    found = leads(session)
    if not found:
        return 0
    today = plan.now.astimezone(ZoneInfo(plan.zone)).date()
    trend = trends(
        session,
        today=today,
        days=plan.trend_days,
        zone=plan.zone,
        notes_as_tasks=plan.notes_as_tasks,
    )
    everyone = counts(session, viewer_role=None, notes_as_tasks=plan.notes_as_tasks, now=plan.now)
    onboarding = overdue_by_owner(session, today)
    rows = [
        _row(lead, today, _for(lead, everyone), trend, plan, _onboarding(lead, onboarding))
        for lead in found
    ]
    enqueue_outbox(session, rows)
    return len(rows)


def _for(lead: Lead, everyone: tuple[KindCount, ...]) -> list[KindCount]:
    """The manager's digest counts every role; anyone else's their own."""
    if lead.role == MANAGER_ROLE:
        return list(everyone)
    return [count for count in everyone if count.role == lead.role]


def _onboarding(lead: Lead, overdue: dict[str, int]) -> int:
    """Overdue onboarding items: every owner's for the manager, the lead's role's for others."""
    if lead.role == MANAGER_ROLE:
        return sum(overdue.values())
    return overdue.get(lead.role, 0)


def _row(
    lead: Lead,
    today: date,
    kinds: list[KindCount],
    trend: TrendView,
    plan: DigestPlan,
    onboarding_overdue: int = 0,
) -> OutboxRow:
    detail: dict[str, Any] = {
        "onboarding_overdue": onboarding_overdue,
        "staff_id": lead.staff_id,
        "role": lead.role,
        "date": today.isoformat(),
        "zone": plan.zone,
        "board_url": plan.board_url,
        "kinds": [
            {
                "kind": c.kind,
                "title": c.title,
                "priority": c.priority.value,
                "role": c.role,
                "open": c.count,
                "overdue": c.overdue,
            }
            for c in kinds
        ],
        "trend": {
            "days": [[d.day.isoformat(), d.opened, d.closed, d.open_at_end] for d in trend.days],
            "median_hours": trend.median_hours_to_close,
            "closed": trend.closed_in_period,
        },
    }
    return {
        "idempotency_key": f"{DIGEST_KIND}:{today.isoformat()}:{lead.staff_id}",
        "channel": Channel.EMAIL,
        "kind": DIGEST_KIND,
        "appointment_id": None,
        "patient_id": None,
        "recipient": lead.email,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "error": None,
        "detail": detail,
        "due_at": plan.now,
        "created_at": plan.now,
        "updated_at": plan.now,
    }


# --- the message ---------------------------------------------------------------------------


def digest_composers(*, sender: str, now: datetime) -> dict[str, Composer]:
    """The builder `office.mailing.send_outbox` needs for the digest's outbox kind."""
    return {DIGEST_KIND: lambda session, item: compose_digest(session, item, sender, now)}


def compose_digest(session: Session, item: OutboxItem, sender: str, now: datetime) -> Outgoing:
    """The digest email for one outbox row: text and HTML, the chart inline."""
    detail = item.detail
    try:
        kinds = detail["kinds"]
        trend = _trend(detail["trend"], detail["zone"])
        day = date.fromisoformat(detail["date"])
        role = str(detail["role"])
        board_url = str(detail["board_url"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ComposeError(f"digest row {item.id} is incomplete") from exc
    practice = session.scalar(select(Practice.name).order_by(Practice.id).limit(1)) or "officeflows"
    domain = address_domain(sender)
    # Derived from the row, like the Message-ID, so a resend is the same message.
    chart_cid = message_id_for(f"{item.idempotency_key}:chart", domain)
    context = _context(kinds, trend, day, role, board_url, practice)
    context["onboarding_overdue"] = int(detail.get("onboarding_overdue", 0))
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id_for(item.idempotency_key, domain)
    message["Date"] = format_datetime(now)
    message["From"] = formataddr((f"{practice} work queue", sender))
    message["To"] = item.recipient
    message["Subject"] = render("digest/digest.subject.txt.j2", **context).strip()
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render("digest/digest.txt.j2", **context) + "\n", cte="quoted-printable")
    html = render("digest/digest.html.j2", chart_cid=chart_cid[1:-1], **context)
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    html_part = message.get_body(preferencelist=("html",))
    if not isinstance(html_part, MIMEPart):  # pragma: no cover - add_alternative made it
        raise ComposeError("the digest's HTML part is missing")
    html_part.add_related(
        trend_chart_png(trend),
        maintype="image",
        subtype="png",
        cid=chart_cid,
        filename="trend.png",
        disposition="inline",
    )
    return Outgoing(message, envelope_sender=None)


def _trend(stored: dict[str, Any], zone: str) -> TrendView:
    days = tuple(
        DayCount(date.fromisoformat(day), opened, closed, open_at_end)
        for day, opened, closed, open_at_end in stored["days"]
    )
    return TrendView(days, stored["median_hours"], int(stored["closed"]), zone)


def _context(
    kinds: list[dict[str, Any]],
    trend: TrendView,
    day: date,
    role: str,
    board_url: str,
    practice: str,
) -> dict[str, object]:
    groups = []
    for priority, label in PRIORITY_LABELS.items():
        rows = [k for k in kinds if k["priority"] == priority.value]
        if rows:
            groups.append(
                {
                    "label": label,
                    "open": sum(k["open"] for k in rows),
                    "overdue": sum(k["overdue"] for k in rows),
                    "kinds": rows,
                }
            )
    last = trend.days[-1] if trend.days else None
    return {
        "practice": practice,
        "day": day,
        "scope": "every role" if role == MANAGER_ROLE else ROLE_LABELS.get(role, role),
        "total": sum(k["open"] for k in kinds),
        "overdue": sum(k["overdue"] for k in kinds),
        "overdue_kinds": [k for k in kinds if k["overdue"]],
        "groups": groups,
        "opened_yesterday": trend.days[-2].opened if len(trend.days) > 1 else 0,
        "closed_yesterday": trend.days[-2].closed if len(trend.days) > 1 else 0,
        "median_hours": trend.median_hours_to_close,
        "open_now": last.open_at_end if last else 0,
        "board_url": board_url,
        "trend_days": len(trend.days),
    }
