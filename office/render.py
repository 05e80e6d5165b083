"""The one Jinja environment for everything people read, reached through `render()`.

StrictUndefined turns a missing variable into an error instead of a blank in a
patient's message; autoescape is on for `.html.j2` templates only, so plain
text and SMS are never littered with `&amp;`.

Reminder messages are composed from these templates by `office.reminders.compose`.

Template layout (under the repository's top-level ``templates/`` directory)::

    reminders/<language>/<kind>.<part>.j2

    language  en | es
    kind      confirmation | reminder | cancellation | reschedule
    part      subject.txt  one line, the email subject
              txt          the email's text body; stands alone if the calendar is stripped
              html         the email's HTML body (autoescaped)
              sms.txt      one GSM-7 segment (160 septets); links, never reply keywords

Reminder templates receive exactly these variables: ``practice_name``,
``location_name``, ``location_address``, ``location_phone``,
``patient_first_name``, ``when_local`` (aware datetime in the location's zone),
``tz_abbrev``, ``visit_label`` (neutral noun chosen by the caller, without an
article: "appointment", "cita"), ``confirm_url``, ``cancel_url``,
``reschedule_url``, ``bring_insurance_card`` (bool) and ``language``; reschedule
templates also ``old_when_local``. Templates never mention the visit type,
diagnosis or reason.

Filters: ``date_long(language)``, ``date_short(language)``,
``time_local(language)`` format an aware datetime in its own zone; ``gsm7``
folds text into the SMS alphabet.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from office.messages import to_gsm7

__all__ = [
    "LANGUAGES",
    "TEMPLATES_DIR",
    "Language",
    "create_environment",
    "date_long",
    "date_short",
    "render",
    "time_local",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

_WEEKDAYS: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}


def _zoned(value: datetime) -> datetime:
    """Refuse naive datetimes: a reminder without a zone has sent patients at the wrong hour."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("reminder times must be timezone-aware (the location's zone)")
    return value


def _names(table: dict[str, tuple[str, ...]], language: str) -> tuple[str, ...]:
    try:
        return table[language]
    except KeyError:
        raise ValueError(f"unsupported language {language!r}") from None


def date_long(value: datetime, language: str) -> str:
    """ "Wednesday, March 12, 2025" / "miércoles, 12 de marzo de 2025"."""
    when = _zoned(value)
    weekday = _names(_WEEKDAYS, language)[when.weekday()]
    month = _names(_MONTHS, language)[when.month - 1]
    if language == "es":
        return f"{weekday}, {when.day} de {month} de {when.year}"
    return f"{weekday}, {month} {when.day}, {when.year}"


def date_short(value: datetime, language: str) -> str:
    """ "Wed Mar 12" / "mié 12 mar": fits subjects and SMS."""
    when = _zoned(value)
    weekday = _names(_WEEKDAYS, language)[when.weekday()][:3]
    month = _names(_MONTHS, language)[when.month - 1][:3]
    if language == "es":
        return f"{weekday} {when.day} {month}"
    return f"{weekday} {month} {when.day}"


def time_local(value: datetime, language: str) -> str:
    """ "9:05 AM" / "9:05 a. m.", the 12-hour forms patients in both languages expect."""
    when = _zoned(value)
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    hour = when.hour % 12 or 12
    if language == "es":
        suffix = "a. m." if when.hour < 12 else "p. m."
    else:
        suffix = "AM" if when.hour < 12 else "PM"
    return f"{hour}:{when.minute:02d} {suffix}"


def create_environment(templates_dir: Path | None = None) -> Environment:
    """Build the environment; `templates_dir` overrides the repository's templates/ in tests."""
    env = Environment(
        loader=FileSystemLoader(templates_dir or TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["date_long"] = date_long
    env.filters["date_short"] = date_short
    env.filters["time_local"] = time_local
    env.filters["gsm7"] = to_gsm7
    return env


@functools.cache
def _environment() -> Environment:
    """Built on first use, never at import time."""
    return create_environment()


def render(name: str, /, **context: object) -> str:
    """Render one template from templates/ with the shared environment."""
    return _environment().get_template(name).render(**context)
