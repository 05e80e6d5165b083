"""Linking a message to the patient it is about: an MRN it carries, or a name with a date of birth.

A link is made only when exactly one patient fits; two candidates link none, and
the reason says so. Text is searched, never stored or logged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.clock import chunks
from office.models import Patient

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["find_patient", "find_patients"]

_MRN = re.compile(r"\bMRN[\s#:.-]*([A-Z0-9][A-Z0-9-]{2,38})\b", re.IGNORECASE)
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_MAX_DATES = 5


def find_patient(session: Session, text: str) -> tuple[int | None, str]:
    """The one patient `text` names, and how ("by MRN", "by name and date of birth") or why not."""
    return find_patients(session, [text])[0]


def find_patients(session: Session, texts: Sequence[str]) -> list[tuple[int | None, str]]:
    """`find_patient` for a batch of texts, with two queries for all of them."""
    mrns = [{token.upper() for token in _MRN.findall(text)} for text in texts]
    wanted = {m for found in mrns for m in found} | {f"MRN{m}" for found in mrns for m in found}
    by_mrn: dict[str, int] = {}
    for chunk in chunks(sorted(wanted)):
        rows = session.execute(select(Patient.mrn, Patient.id).where(Patient.mrn.in_(chunk)))
        by_mrn.update((row.mrn.upper(), row.id) for row in rows)
    births = [_dates(text) for text in texts]
    people: dict[date, list[tuple[int, str, str]]] = {}
    every_birth = sorted({birth for dates in births for birth in dates})
    for chunk in chunks(every_birth):
        rows = session.execute(
            select(Patient.id, Patient.first_name, Patient.last_name, Patient.date_of_birth).where(
                Patient.date_of_birth.in_(chunk)
            )
        )
        for row in rows:
            people.setdefault(row.date_of_birth, []).append(
                (row.id, row.first_name.casefold(), row.last_name.casefold())
            )
    return [
        _one(text, found, dates, by_mrn, people)
        for text, found, dates in zip(texts, mrns, births, strict=True)
    ]


def _one(
    text: str,
    mrns: set[str],
    births: list[date],
    by_mrn: dict[str, int],
    people: dict[date, list[tuple[int, str, str]]],
) -> tuple[int | None, str]:
    if mrns:
        found = {by_mrn[key] for m in mrns for key in (m, f"MRN{m}") if key in by_mrn}
        if len(found) == 1:
            return found.pop(), "by MRN"
        if len(found) > 1:
            return None, "several MRNs"
    if not births:
        return None, "no MRN or date of birth"
    words = {word.casefold() for word in _WORD.findall(text)}
    matches = {
        patient_id
        for birth in births
        for patient_id, first, last in people.get(birth, ())
        if first in words and last in words
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
