"""Reminder policy: offsets, send windows, DST, booking inside a window, consent routing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from office.models import AppointmentStatus, Channel, CheckStatus
from office.reminders.policy import (
    BOOKED_INSIDE,
    CONFIRMED,
    DEFAULT_OFFSETS,
    NO_CONSENT,
    NO_WINDOW,
    NOT_APPROVED,
    ONE_TEXT_A_DAY,
    OPTED_OUT,
    SUPERSEDED,
    UNDELIVERABLE,
    Contact,
    Facts,
    OffsetError,
    Planned,
    Policy,
    SendWindow,
    bring_insurance_card,
    due_now,
    notice_route,
    parse_offsets,
    plan_reminders,
    reachable,
    route,
    visit_label,
    zone_for,
)

CHICAGO = ZoneInfo("America/Chicago")
EVERYONE = Contact(
    email="ava@example.test",
    phone="+13125550123",
    consented=frozenset({Channel.EMAIL, Channel.SMS}),
)
POLICY = Policy()


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)  # type: ignore[misc]


def facts(
    start: datetime,
    *,
    offsets: Any = None,
    scheduled_at: datetime | None = None,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    stop_on_confirm: bool = True,
    contact: Contact = EVERYONE,
) -> Facts:
    return Facts(
        appointment_id=1,
        start=start.astimezone(UTC),
        status=status,
        scheduled_at=(scheduled_at or start - timedelta(days=30)).astimezone(UTC),
        zone=CHICAGO,
        offsets=parse_offsets(offsets),
        stop_on_confirm=stop_on_confirm,
        contact=contact,
    )


def by_step(plans: list[Planned]) -> dict[tuple[str, str], Planned]:
    return {(plan.offset.key, str(plan.channel)): plan for plan in plans}


# --- offsets ------------------------------------------------------------------------------


def test_default_offsets_are_72h_email_24h_email_and_sms_2h_sms() -> None:
    assert [(o.key, o.channels) for o in DEFAULT_OFFSETS] == [
        ("72h", (Channel.EMAIL,)),
        ("24h", (Channel.EMAIL, Channel.SMS)),
        ("2h", (Channel.SMS,)),
    ]
    assert parse_offsets(None) == DEFAULT_OFFSETS
    assert parse_offsets([]) == ()


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("72h", "must be a list"),
        ([{"hours": 0, "channels": ["email"]}], "hours must be a positive number"),
        ([{"hours": 24, "channels": []}], "channels must be a non-empty list"),
        ([{"hours": 24, "channels": ["fax"]}], "only email and sms"),
        ([{"days_before": 1, "at": "9:00", "channels": ["sms"]}], "at must be HH:MM"),
        ([{"days_before": -1, "at": "09:00", "channels": ["sms"]}], "days_before must be 0 to 60"),
        ([{"channels": ["sms"]}], "needs hours or days_before"),
        ([{"hours": 2, "channels": ["sms"]}, {"hours": 2.0, "channels": ["email"]}], "twice"),
    ],
)
def test_bad_offsets_name_the_problem(raw: Any, problem: str) -> None:
    with pytest.raises(OffsetError, match=problem):
        parse_offsets(raw)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["hours", "days_before", "at", "channels"]),
            st.one_of(
                st.none(),
                st.integers(-5, 100),
                st.floats(allow_nan=True),
                st.text(max_size=6),
                st.lists(st.sampled_from(["email", "sms", "x"]), max_size=3),
            ),
        ),
        max_size=4,
    )
)
def test_offset_parser_accepts_or_refuses_cleanly(raw: list[dict[str, Any]]) -> None:
    try:
        parsed = parse_offsets(raw)
    except OffsetError:
        return
    for offset in parsed:
        assert offset.channels
        assert (offset.hours is None) != (offset.days_before is None)


# --- DST: an instant offset and a wall-clock offset differ across the change ------------


def test_dst_spring_forward_24h_is_24_real_hours_but_day_before_at_10_is_wall_clock() -> None:
    # Sunday 8 March 2026: Chicago skips 02:00-03:00. The visit is at 10:00 CDT.
    start = local(2026, 3, 8, 10, 0)
    plans = by_step(
        plan_reminders(
            facts(
                start,
                offsets=[
                    {"hours": 24, "channels": ["email"]},
                    {"days_before": 1, "at": "10:00", "channels": ["sms"]},
                ],
            ),
            POLICY,
        )
    )
    instant = plans[("24h", "email")]
    wall = plans[("d1at1000", "sms")]
    assert start.astimezone(UTC) - instant.send_at == timedelta(hours=24)
    assert instant.send_at.astimezone(CHICAGO) == local(2026, 3, 7, 9, 0)  # 09:00 CST
    assert wall.send_at.astimezone(CHICAGO) == local(2026, 3, 7, 10, 0)
    assert start.astimezone(UTC) - wall.send_at == timedelta(hours=23)
    assert instant.skip is None
    assert wall.skip is None


def test_dst_fall_back_24h_is_24_real_hours_but_day_before_at_10_is_wall_clock() -> None:
    # Sunday 1 November 2026: Chicago repeats 01:00-02:00. The visit is at 10:00 CST.
    start = local(2026, 11, 1, 10, 0)
    plans = by_step(
        plan_reminders(
            facts(
                start,
                offsets=[
                    {"hours": 24, "channels": ["email"]},
                    {"days_before": 1, "at": "10:00", "channels": ["sms"]},
                ],
            ),
            POLICY,
        )
    )
    instant = plans[("24h", "email")]
    wall = plans[("d1at1000", "sms")]
    assert instant.send_at.astimezone(CHICAGO) == local(2026, 10, 31, 11, 0)  # 11:00 CDT
    assert start.astimezone(UTC) - instant.send_at == timedelta(hours=24)
    assert wall.send_at.astimezone(CHICAGO) == local(2026, 10, 31, 10, 0)
    assert start.astimezone(UTC) - wall.send_at == timedelta(hours=25)


def test_wall_clock_offset_inside_the_spring_gap_resolves_forward_then_into_the_window() -> None:
    # 02:30 on 8 March does not exist in Chicago; the send window moves it anyway.
    start = local(2026, 3, 8, 11, 0)
    plan = plan_reminders(
        facts(start, offsets=[{"days_before": 0, "at": "02:30", "channels": ["email"]}]), POLICY
    )[0]
    assert plan.nominal_at.astimezone(CHICAGO).hour == 3
    assert plan.send_at.astimezone(CHICAGO) == local(2026, 3, 7, 19, 45)


# --- send windows ---------------------------------------------------------------------------


def test_quiet_hours_move_a_reminder_earlier_to_the_previous_evening() -> None:
    start = local(2026, 12, 2, 8, 30)
    plan = plan_reminders(facts(start, offsets=[{"hours": 2, "channels": ["sms"]}]), POLICY)[0]
    assert plan.nominal_at.astimezone(CHICAGO) == local(2026, 12, 2, 6, 30)
    assert plan.send_at.astimezone(CHICAGO) == local(2026, 12, 1, 19, 45)
    assert plan.moved
    assert plan.skip is None


def test_late_evening_reminder_moves_to_the_last_slot_that_day() -> None:
    start = local(2026, 12, 3, 23, 0)
    plan = plan_reminders(facts(start, offsets=[{"hours": 24, "channels": ["email"]}]), POLICY)[0]
    assert plan.send_at.astimezone(CHICAGO) == local(2026, 12, 2, 19, 45)


def test_window_may_send_and_next_opening() -> None:
    window = SendWindow()
    assert window.may_send(local(2026, 12, 1, 9, 0), CHICAGO)
    assert window.may_send(local(2026, 12, 1, 19, 59), CHICAGO)
    assert not window.may_send(local(2026, 12, 1, 20, 0), CHICAGO)
    assert not window.may_send(local(2026, 12, 1, 8, 59), CHICAGO)
    assert window.next_opening(local(2026, 12, 1, 21, 0), CHICAGO) == local(2026, 12, 2, 9, 0)
    assert window.next_opening(local(2026, 12, 1, 7, 0), CHICAGO) == local(2026, 12, 1, 9, 0)
    with pytest.raises(ValueError, match="margin"):
        SendWindow(opens=time(9), closes=time(9, 10))


def test_no_window_left_after_a_late_evening_booking_skips_with_the_reason() -> None:
    start = local(2026, 12, 2, 8, 30)
    plan = plan_reminders(
        facts(
            start,
            offsets=[{"hours": 2, "channels": ["sms"]}],
            scheduled_at=local(2026, 12, 1, 21, 0),
        ),
        POLICY,
    )[0]
    assert plan.skip == NO_WINDOW


def test_booking_inside_the_72h_window_skips_72h_but_keeps_24h_and_2h() -> None:
    start = local(2026, 12, 4, 14, 0)
    plans = by_step(plan_reminders(facts(start, scheduled_at=start - timedelta(hours=30)), POLICY))
    assert plans[("72h", "email")].skip == BOOKED_INSIDE
    assert plans[("24h", "email")].skip is None
    assert plans[("24h", "sms")].skip is None
    assert plans[("2h", "sms")].skip is None


def test_booking_an_hour_ahead_sends_no_reminder_at_all() -> None:
    start = local(2026, 12, 4, 14, 0)
    plans = plan_reminders(facts(start, scheduled_at=start - timedelta(hours=1)), POLICY)
    assert {plan.skip for plan in plans} == {BOOKED_INSIDE}


def test_confirmed_visit_stops_reminders_only_when_the_type_says_so() -> None:
    start = local(2026, 12, 4, 14, 0)
    stopped = plan_reminders(facts(start, status=AppointmentStatus.CONFIRMED), POLICY)
    assert {plan.skip for plan in stopped} == {CONFIRMED}
    kept = plan_reminders(
        facts(start, status=AppointmentStatus.CONFIRMED, stop_on_confirm=False), POLICY
    )
    assert all(plan.skip is None for plan in kept)


def test_one_text_a_day_keeps_the_first_text() -> None:
    # 24 h text at 10:00 on the 3rd; the 2 h text moves from 08:00 on the 4th to 19:45 on the 3rd.
    start = local(2026, 12, 4, 10, 0)
    plans = by_step(plan_reminders(facts(start), POLICY))
    assert plans[("24h", "sms")].skip is None
    assert plans[("2h", "sms")].skip == ONE_TEXT_A_DAY
    relaxed = by_step(plan_reminders(facts(start), Policy(one_text_a_day=False)))
    assert relaxed[("2h", "sms")].skip is None


def test_a_run_that_finds_two_steps_due_sends_only_the_later_one() -> None:
    start = local(2026, 12, 4, 14, 0)
    plans = plan_reminders(facts(start), POLICY)
    due = by_step(due_now(plans, (start - timedelta(hours=24)).astimezone(UTC)))
    assert due[("72h", "email")].skip == SUPERSEDED
    assert due[("24h", "email")].skip is None
    assert ("2h", "sms") not in due


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(CHICAGO)
    ),
    lead_hours=st.integers(min_value=0, max_value=24 * 10),
    hours=st.lists(st.integers(min_value=1, max_value=24 * 7), min_size=1, max_size=4, unique=True),
    wall=st.tuples(st.integers(0, 5), st.integers(0, 23), st.integers(0, 59)),
)
def test_every_planned_send_is_inside_the_window_before_the_visit_and_after_booking(
    start: datetime, lead_hours: int, hours: list[int], wall: tuple[int, int, int]
) -> None:
    offsets: list[dict[str, Any]] = [{"hours": h, "channels": ["email"]} for h in hours]
    offsets.append(
        {"days_before": wall[0], "at": f"{wall[1]:02d}:{wall[2]:02d}", "channels": ["sms"]}
    )
    booked = start - timedelta(hours=lead_hours)
    for plan in plan_reminders(facts(start, offsets=offsets, scheduled_at=booked), POLICY):
        if plan.skip is not None:
            continue
        assert plan.send_at <= plan.nominal_at
        assert plan.send_at < start
        assert plan.send_at >= booked
        wall_time = plan.send_at.astimezone(CHICAGO).time()
        assert time(9, 0) <= wall_time <= time(19, 45)


# --- consent and channels -------------------------------------------------------------------


def test_routes_honour_opt_out_consent_confidential_and_bounces() -> None:
    assert route(EVERYONE, Channel.EMAIL).address == "ava@example.test"
    opted = Contact(
        email="a@x.test",
        phone="+13125550123",
        consented=frozenset({Channel.EMAIL}),
        opted_out=frozenset({Channel.SMS}),
    )
    assert route(opted, Channel.SMS).reason == OPTED_OUT
    no_consent = Contact(email="a@x.test", phone="+13125550123")
    assert route(no_consent, Channel.EMAIL).reason == NO_CONSENT
    assert not reachable(no_consent)
    private = Contact(
        email="home@x.test",
        phone="+13125550123",
        consented=frozenset({Channel.EMAIL, Channel.SMS}),
        confidential=True,
        confidential_channel=Channel.EMAIL,
        confidential_address="private@x.test",
    )
    assert route(private, Channel.EMAIL).address == "private@x.test"
    assert route(private, Channel.SMS).reason == NOT_APPROVED
    bounced = Contact(
        email="a@x.test", phone=None, consented=frozenset({Channel.EMAIL}), email_undeliverable=True
    )
    assert route(bounced, Channel.EMAIL).reason == UNDELIVERABLE
    assert route(bounced, Channel.SMS).reason == NO_CONSENT


def test_notices_prefer_email_then_fall_back_to_text() -> None:
    email = notice_route(EVERYONE)
    assert email is not None
    assert email.channel is Channel.EMAIL
    texts_only = Contact(email=None, phone="+13125550123", consented=frozenset({Channel.SMS}))
    text = notice_route(texts_only)
    assert text is not None
    assert text.channel is Channel.SMS
    assert notice_route(Contact(email=None, phone=None)) is None


def test_sensitive_visits_get_the_neutral_word_and_spanish_gets_cita() -> None:
    assert visit_label(sensitive=True, type_name="Behavioral health session", language="en") == (
        "appointment"
    )
    assert visit_label(sensitive=False, type_name="Follow-up visit", language="en") == (
        "follow-up visit"
    )
    assert visit_label(sensitive=False, type_name="Follow-up visit", language="es") == "cita"


@pytest.mark.parametrize(
    ("status", "bring"),
    [
        (None, False),
        (CheckStatus.ACTIVE, False),
        (CheckStatus.PENDING, False),
        (CheckStatus.UNVERIFIED, True),
        (CheckStatus.ERROR, True),
        (CheckStatus.INACTIVE, True),
    ],
)
def test_insurance_card_is_asked_for_when_coverage_is_not_a_clean_yes(
    status: CheckStatus | None, bring: bool
) -> None:
    assert bring_insurance_card(status) is bring


def test_patient_zone_wins_over_the_location_and_a_bad_one_falls_back() -> None:
    assert zone_for("America/Denver", "America/Chicago") == ZoneInfo("America/Denver")
    assert zone_for("Mars/Olympus", "America/Chicago") == CHICAGO
    assert zone_for(None, "America/Chicago") == CHICAGO
