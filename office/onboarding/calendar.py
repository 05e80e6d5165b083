"""Business days: weekdays that are neither a US federal holiday nor a day the practice closes.

Checklist offsets count business days from a start date ("3 business days after day one",
negative before it); escalation counts the business days an item is overdue. Federal
holidays come from the `holidays` library (its observed days included: Independence Day
on a Saturday is observed on the Friday before); the practice's own closed days are rows
of `practice_closed_days` (`office onboarding closed-days`).

Counting needs no walk: weekdays between two dates by arithmetic, less the holidays and
closed days among them (a sorted list per year, searched by bisection), so a follow-up over
tens of thousands of items pays the same for each.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from office.models import ClosedDay

__all__ = ["BusinessCalendar", "load_calendar"]

_EPOCH: Final = date(2000, 1, 3)  # a Monday: weekdays are counted from here
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class BusinessCalendar:
    """Which days are business days, and counting them.

    Args:
        closed: The practice's own closed days, besides weekends and federal holidays.
    """

    closed: frozenset[date] = frozenset()
    _federal: holidays.HolidayBase = field(
        default_factory=lambda: holidays.country_holidays("US"), compare=False, repr=False
    )
    _years: dict[int, list[date]] = field(default_factory=dict, compare=False, repr=False)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.closed and day not in self._federal

    def holiday_name(self, day: date) -> str | None:
        """Why `day` is not a business day, when it is a holiday or a closed day."""
        if day in self.closed:
            return "practice closed"
        name = self._federal.get(day)
        return str(name) if name else None

    def roll_forward(self, day: date) -> date:
        """`day` if it is a business day, else the next one."""
        while not self.is_business_day(day):
            day += _DAY
        return day

    def roll_back(self, day: date) -> date:
        """`day` if it is a business day, else the one before it."""
        while not self.is_business_day(day):
            day -= _DAY
        return day

    def add(self, start: date, offset: int) -> date:
        """The business day `offset` business days after `start` (before it when negative).

        Offset 0 is `start` itself when it is a business day, else the next one: a start
        date on a holiday begins on the following business day, and offsets count from there.
        """
        day = self.roll_forward(start)
        step = _DAY if offset > 0 else -_DAY
        remaining = abs(offset)
        while remaining:
            day += step
            if self.is_business_day(day):
                remaining -= 1
        return day

    def between(self, start: date, end: date) -> int:
        """Business days after `start` up to and including `end` (negative when `end` is first).

        Due Monday, asked Wednesday: 2. Due Friday, asked Saturday: 0.
        """
        if end < start:
            return -self.between(end, start)
        weekdays = _weekdays_before(end + _DAY) - _weekdays_before(start + _DAY)
        off = 0
        for year in range(start.year, end.year + 1):
            days = self._off_days(year)
            off += bisect_right(days, end) - bisect_right(days, start)
        return weekdays - off

    def _off_days(self, year: int) -> list[date]:
        """The weekdays of `year` that are holidays or closed days, sorted."""
        found = self._years.get(year)
        if found is None:
            self._federal.get(date(year, 1, 1))  # fills in the year's holidays
            candidates = {d for d in self._federal if d.year == year}
            candidates.update(d for d in self.closed if d.year == year)
            found = sorted(d for d in candidates if d.weekday() < 5)
            self._years[year] = found
        return found


def _weekdays_before(day: date) -> int:
    """Monday-to-Friday days from the epoch up to `day` excluded (negative before the epoch)."""
    weeks, rest = divmod((day - _EPOCH).days, 7)
    return weeks * 5 + min(rest, 5)


def load_calendar(session: Session, *, extra_closed: Iterable[date] = ()) -> BusinessCalendar:
    """The practice's calendar: federal holidays, its closed days and any `extra_closed`."""
    closed = set(session.scalars(select(ClosedDay.day)))
    closed.update(extra_closed)
    return BusinessCalendar(frozenset(closed))
