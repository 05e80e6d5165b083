"""Every reminder template renders in every language, strictly, and within its channel's rules.

Templates are rendered alone here, and as the send loop composes them (`compose_email`,
`compose_sms`) at the end.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pytest
from jinja2 import meta

from office.messages import sms_fits
from office.reminders import Draft, compose_email, compose_sms
from office.render import (
    LANGUAGES,
    TEMPLATES_DIR,
    create_environment,
    date_long,
    date_short,
    render,
    time_local,
)
from office.settings import Settings

Context = Callable[..., dict[str, object]]
Compose = Callable[..., Draft]

KINDS = ("confirmation", "reminder", "cancellation", "reschedule")
PARTS = ("subject.txt", "txt", "html", "sms.txt")
EXPECTED = sorted(
    f"reminders/{language}/{kind}.{part}.j2"
    for language in LANGUAGES
    for kind in KINDS
    for part in PARTS
)
DISCOVERED = sorted(
    path.relative_to(TEMPLATES_DIR).as_posix()
    for path in (TEMPLATES_DIR / "reminders").rglob("*")
    if path.is_file()
)
ALLOWED_VARIABLES = {
    "practice_name",
    "location_name",
    "location_address",
    "location_phone",
    "patient_first_name",
    "when_local",
    "tz_abbrev",
    "visit_label",
    "confirm_url",
    "cancel_url",
    "reschedule_url",
    "bring_insurance_card",
    "language",
    "old_when_local",
}
# Twilio's opt-out keywords (CANCEL among them) and any reply instruction.
REPLY_KEYWORDS = re.compile(
    r"\b(stop|stopall|unsubscribe|cancel|end|quit|reply|text back|responda|conteste)\b",
    re.IGNORECASE,
)


def language_of(name: str) -> str:
    return name.split("/")[1]


def test_the_template_set_is_exactly_the_tested_one() -> None:
    """A template added without a place in EXPECTED (and so in these tests) fails here."""
    assert DISCOVERED == EXPECTED


@pytest.mark.parametrize("name", DISCOVERED)
def test_template_renders_strictly_with_the_documented_context(
    name: str, reminder_context: Context
) -> None:
    output = render(name, **reminder_context(language_of(name)))
    assert output.strip()
    assert "Undefined" not in output


@pytest.mark.parametrize("name", DISCOVERED)
def test_templates_use_only_the_documented_variables(name: str) -> None:
    """Templates never reach for the visit type, reason or any other field."""
    env = create_environment()
    source = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    assert meta.find_undeclared_variables(env.parse(source)) <= ALLOWED_VARIABLES


@pytest.mark.parametrize("name", [name for name in DISCOVERED if name.endswith(".sms.txt.j2")])
@pytest.mark.parametrize(
    "practice_name",
    ["Riverside Family Medicine and Pediatrics", "Clínica Pediátrica Santa María del Río"],
)
def test_sms_fits_one_segment_names_the_practice_and_a_phone_and_has_no_reply_keyword(
    name: str, practice_name: str, reminder_context: Context
) -> None:
    text = render(name, **reminder_context(language_of(name), practice_name=practice_name))
    assert sms_fits(text), (len(text), text)
    assert text.startswith(practice_name.replace("í", "i").replace("á", "a")[:20])
    assert "(555) 555-0123" in text
    assert not REPLY_KEYWORDS.search(text), text


@pytest.mark.parametrize("name", [name for name in DISCOVERED if name.endswith(".sms.txt.j2")])
def test_sms_carries_no_first_name(name: str, reminder_context: Context) -> None:
    text = render(name, **reminder_context(language_of(name), patient_first_name="Evangelina"))
    assert "Evangelina" not in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_email_text_stands_alone_without_the_calendar(
    kind: str, language: str, reminder_context: Context
) -> None:
    context = reminder_context(language)
    text = render(f"reminders/{language}/{kind}.txt.j2", **context)
    when = context["when_local"]
    assert isinstance(when, datetime)
    assert date_long(when, language) in text
    assert time_local(when, language) in text
    assert "EDT" in text
    assert str(context["location_address"]) in text
    assert str(context["location_phone"]) in text
    assert str(context["practice_name"]) in text
    if kind != "cancellation":
        assert str(context["reschedule_url"]) in text
        assert str(context["cancel_url"]) in text
    if kind in ("reminder", "reschedule"):
        assert str(context["confirm_url"]) in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_reschedule_shows_both_times(language: str, reminder_context: Context) -> None:
    context = reminder_context(language)
    text = render(f"reminders/{language}/reschedule.txt.j2", **context)
    old = context["old_when_local"]
    assert isinstance(old, datetime)
    assert date_long(old, language) in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["confirmation", "reminder", "reschedule"])
@pytest.mark.parametrize("part", ["txt", "html"])
def test_insurance_card_line_follows_the_flag(
    kind: str, language: str, part: str, reminder_context: Context
) -> None:
    line = {"en": "bring your current insurance card", "es": "traiga su tarjeta de seguro"}[
        language
    ]
    name = f"reminders/{language}/{kind}.{part}.j2"
    assert line in render(name, **reminder_context(language, bring_insurance_card=True))
    assert line not in render(name, **reminder_context(language, bring_insurance_card=False))


def test_missing_variable_raises(reminder_context: Context) -> None:
    context = reminder_context("en")
    del context["patient_first_name"]
    with pytest.raises(jinja2.UndefinedError, match="patient_first_name"):
        render("reminders/en/reminder.txt.j2", **context)


def test_missing_variable_raises_inside_a_filter_argument(reminder_context: Context) -> None:
    context = reminder_context("es")
    del context["language"]
    with pytest.raises(jinja2.UndefinedError):
        render("reminders/es/reminder.sms.txt.j2", **context)


def test_html_is_autoescaped_and_text_is_not(reminder_context: Context) -> None:
    context = reminder_context("en", patient_first_name="<b>Ann</b> & co")
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; co" in render("reminders/en/reminder.html.j2", **context)
    assert "<b>Ann</b> & co" in render("reminders/en/reminder.txt.j2", **context)
    assert "<b>Ann</b>" not in render("reminders/en/reminder.html.j2", **context)


def test_environment_override_reads_another_directory(tmp_path: Path) -> None:
    (tmp_path / "hello.txt.j2").write_text("Hi {{ who }} on {{ when|date_short('es') }}")
    env = create_environment(tmp_path)
    when = datetime(2025, 3, 15, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    assert env.get_template("hello.txt.j2").render(who="Ana", when=when) == "Hi Ana on sáb 15 mar"
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("hello.txt.j2").render(when=when)


@pytest.fixture
def link_settings(tmp_path: Path) -> Settings:
    # Links of 41 characters, as in `reminder_context`: the longest a text has room for.
    return Settings(home=tmp_path, public_url="https://rfmp.ex", mail_from="rem@rfmp.example")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_composed_reminder_has_its_four_parts(
    kind: str, language: str, draft: Compose, link_settings: Settings
) -> None:
    row = draft(kind, language)
    message = BytesParser(policy=email.policy.default).parsebytes(
        compose_email(row, link_settings, "test-link-secret").data
    )
    text = compose_sms(row, link_settings, "test-link-secret")

    subject = str(message["Subject"])
    assert "\n" not in subject
    assert subject.startswith("Riverside Family Medicine and Pediatrics:")
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().endswith("\n")  # type: ignore[attr-defined]
    assert html.get_content().lstrip().startswith("<!DOCTYPE html>")  # type: ignore[attr-defined]
    assert sms_fits(text)
    assert "María" not in text


def test_a_composed_text_that_outgrew_one_segment_does_not_fit(
    draft: Compose, tmp_path: Path
) -> None:
    long_host = Settings(home=tmp_path, public_url="https://" + "x" * 80 + ".example")
    assert not sms_fits(compose_sms(draft(), long_host, "test-link-secret"))


def test_composing_refuses_an_unknown_language_or_kind(
    draft: Compose, link_settings: Settings
) -> None:
    with pytest.raises(ValueError, match="language"):
        compose_email(draft("reminder", "fr"), link_settings, "test-link-secret")
    with pytest.raises(ValueError, match="kind"):
        compose_sms(draft("followup", "en"), link_settings, "test-link-secret")


@pytest.mark.parametrize(
    ("when", "language", "long", "short", "clock"),
    [
        (
            datetime(2025, 3, 12, 10, 30),
            "en",
            "Wednesday, March 12, 2025",
            "Wed Mar 12",
            "10:30 AM",
        ),
        (
            datetime(2025, 3, 12, 10, 30),
            "es",
            "miércoles, 12 de marzo de 2025",
            "mié 12 mar",
            "10:30 a. m.",
        ),
        (datetime(2025, 11, 1, 0, 5), "en", "Saturday, November 1, 2025", "Sat Nov 1", "12:05 AM"),
        (
            datetime(2025, 11, 1, 12, 0),
            "es",
            "sábado, 1 de noviembre de 2025",
            "sáb 1 nov",
            "12:00 p. m.",
        ),
    ],
)
def test_date_and_time_filters(
    when: datetime, language: str, long: str, short: str, clock: str
) -> None:
    local = when.replace(tzinfo=ZoneInfo("America/Chicago"))
    assert date_long(local, language) == long
    assert date_short(local, language) == short
    assert time_local(local, language) == clock


def test_filters_use_the_datetime_own_zone_not_the_server_zone() -> None:
    instant = datetime(2025, 3, 12, 3, 30, tzinfo=ZoneInfo("UTC"))
    honolulu = instant.astimezone(ZoneInfo("Pacific/Honolulu"))
    assert date_short(honolulu, "en") == "Tue Mar 11"
    assert time_local(honolulu, "en") == "5:30 PM"


@pytest.mark.parametrize("function", [date_long, date_short, time_local])
def test_filters_refuse_naive_datetimes_and_unknown_languages(
    function: Callable[[datetime, str], str],
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        function(datetime(2025, 3, 12, 10, 30), "en")
    with pytest.raises(ValueError, match="language"):
        function(datetime(2025, 3, 12, 10, 30, tzinfo=ZoneInfo("UTC")), "fr")
