"""Linking a message to the patient it is about: an MRN it carries, or a name with a date of birth.

A link is made only when exactly one patient fits; two candidates link none, and
the reason says so. Text is searched, never stored or logged.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.models import Patient

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["find_patient"]

_MRN = re.compile(r"\bMRN[\s#:.-]*([A-Z0-9][A-Z0-9-]{2,38})\b", re.IGNORECASE)
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_MAX_DATES = 5


def find_patient(session: Session, text: str) -> tuple[int | None, str]:
    """The one patient `text` names, and how ("by MRN", "by name and date of birth") or why not."""
    mrns = {token.upper() for token in _MRN.findall(text)}
    if mrns:
        candidates = mrns | {f"MRN{token}" for token in mrns}
        found = set(session.scalars(select(Patient.id).where(Patient.mrn.in_(candidates))))
        if len(found) == 1:
            return found.pop(), "by MRN"
        if len(found) > 1:
            return None, "several MRNs"
    births = _dates(text)
    if not births:
        return None, "no MRN or date of birth"
    words = {word.casefold() for word in _WORD.findall(text)}
    rows = session.execute(
        select(Patient.id, Patient.first_name, Patient.last_name).where(
            Patient.date_of_birth.in_(births)
        )
    )
    matches = {
        row.id
        for row in rows
        if row.first_name.casefold() in words and row.last_name.casefold() in words
    }
    if len(matches) == 1:
        return matches.pop(), "by name and date of birth"
    return None, "several patients match" if matches else "no patient matches"


def _dates(text: str) -> list[date]:
    found: list[date] = []
    for month, day, year in _US_DATE.findall(text):
        _add(found, int(year), int(month), int(day))
    for year, month, day in _ISO_DATE.findall(text):
        _add(found, int(year), int(month), int(day))
    return found[:_MAX_DATES]


def _add(found: list[date], year: int, month: int, day: int) -> None:
    try:
        moment = date(year, month, day)
    except ValueError:
        return
    if 1900 <= year <= 2100 and moment not in found:
        found.append(moment)
