"""Business days: offsets across month ends, weekends, federal holidays (observed days
included) and the practice's own closed days, and counting that agrees with stepping."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from office.onboarding.calendar import BusinessCalendar

CAL = BusinessCalendar()


def test_offsets_cross_weekends_and_month_ends() -> None:
    assert CAL.add(date(2026, 1, 30), 1) == date(2026, 2, 2)  # Friday -> Monday, new month
    assert CAL.add(date(2026, 2, 27), 2) == date(2026, 3, 3)
    assert CAL.add(date(2026, 3, 2), -1) == date(2026, 2, 27)  # before day one


def test_federal_holidays_are_skipped_with_their_observed_days() -> None:
    # 4 July 2026 is a Saturday: observed Friday 3 July.
    assert not CAL.is_business_day(date(2026, 7, 3))
    assert CAL.add(date(2026, 7, 2), 1) == date(2026, 7, 6)
    # Thanksgiving, Thursday 26 November 2026.
    assert CAL.add(date(2026, 11, 25), 1) == date(2026, 11, 27)
    # New Year's Day 2026 is a Thursday; two business days before Monday 5 January.
    assert CAL.add(date(2026, 1, 5), -2) == date(2025, 12, 31)


def test_a_start_on_a_holiday_begins_the_next_business_day() -> None:
    assert CAL.add(date(2026, 1, 19), 0) == date(2026, 1, 20)  # Martin Luther King Jr. Day
    assert CAL.add(date(2026, 12, 5), 0) == date(2026, 12, 7)  # a Saturday


def test_the_practices_closed_days_are_not_business_days() -> None:
    closed = BusinessCalendar(frozenset({date(2026, 12, 24)}))
    assert closed.add(date(2026, 12, 23), 1) == date(2026, 12, 28)  # 24 closed, 25 Christmas
    assert closed.between(date(2026, 12, 23), date(2026, 12, 28)) == 1
    assert closed.holiday_name(date(2026, 12, 24)) == "practice closed"


def test_counting_business_days_between() -> None:
    assert CAL.between(date(2026, 11, 30), date(2026, 12, 2)) == 2  # Monday to Wednesday
    assert CAL.between(date(2026, 12, 4), date(2026, 12, 5)) == 0  # Friday to Saturday
    assert CAL.between(date(2026, 12, 2), date(2026, 11, 30)) == -2


@given(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=-40, max_value=80),
)
def test_counting_agrees_with_stepping(start: date, offset: int) -> None:
    first = CAL.roll_forward(start)
    end = CAL.add(first, offset)
    assert CAL.is_business_day(end)
    assert CAL.between(first, end) == offset
    stepped = sum(
        CAL.is_business_day(first + timedelta(days=n)) for n in range(1, (end - first).days + 1)
    )
    if offset >= 0:
        assert stepped == offset
