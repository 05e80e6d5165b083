"""deployments/prefect.yaml is what `office serve` serves and `prefect deploy` registers: it is
read with `prefect deploy`'s own schema and schedule builder, every entry resolves to a flow,
every schedule names its time zone, and OFFICE_PRACTICE_TIMEZONE overrides the zones only
when it is set."""

from __future__ import annotations

import asyncio
import zoneinfo
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from app.prefect_handoff import (
    DEPLOYMENTS_FILE,
    DeploymentsFileError,
    DeploymentSpec,
    _load_flow,
    build_deployments,
    load_specs,
)
from app.serve import schedule_zone
from office.settings import Settings

ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})

THREE_KINDS = """\
deployments:
  - name: all-kinds
    entrypoint: flows/reminders.py:send_reminders
    schedules:
      - {cron: "30 6 * * 1-5", timezone: America/Chicago, slug: weekday-morning}
      - {interval: 900, timezone: America/Denver, slug: quarter-hour, active: false}
      - {rrule: "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=3", timezone: Europe/Paris, slug: monthly,
         parameters: {now: null}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prefect.yaml"
    path.write_text(text)
    return path


def test_every_entrypoint_is_a_flow() -> None:
    specs = load_specs()
    assert {spec.name for spec in specs} >= {"intake"}
    for spec in specs:
        assert isinstance(_load_flow(spec.entrypoint), Flow), spec.entrypoint


def test_every_schedule_names_its_time_zone() -> None:
    for spec in load_specs():
        for schedule in spec.schedules:
            assert schedule.schedule.timezone, f"{spec.name} has a schedule without a time zone"


def test_cron_interval_and_rrule_are_read_as_prefect_deploy_reads_them(tmp_path: Path) -> None:
    [spec] = load_specs(write(tmp_path, THREE_KINDS))
    cron, interval, rrule = spec.schedules
    assert isinstance(cron.schedule, CronSchedule)
    assert (cron.schedule.cron, cron.schedule.timezone) == ("30 6 * * 1-5", "America/Chicago")
    assert isinstance(interval.schedule, IntervalSchedule)
    assert interval.schedule.interval == timedelta(minutes=15)
    assert interval.schedule.timezone == "America/Denver"
    assert interval.active is False
    assert isinstance(rrule.schedule, RRuleSchedule)
    assert "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=3" in rrule.schedule.rrule
    assert rrule.schedule.timezone == "Europe/Paris"
    assert rrule.parameters == {"now": None}
    assert [s.slug for s in spec.schedules] == ["weekday-morning", "quarter-hour", "monthly"]


def test_a_given_zone_replaces_every_schedule_zone(tmp_path: Path) -> None:
    [spec] = load_specs(write(tmp_path, THREE_KINDS), timezone="Asia/Tokyo")
    assert {s.schedule.timezone for s in spec.schedules} == {"Asia/Tokyo"}
    assert [s.slug for s in spec.schedules] == ["weekday-morning", "quarter-hour", "monthly"]


@settings(max_examples=40, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=10**7),
    zone=st.sampled_from(ZONES),
    override=st.none() | st.sampled_from(ZONES),
)
def test_an_interval_keeps_its_length_and_the_zone_in_force(
    tmp_path_factory: pytest.TempPathFactory, seconds: int, zone: str, override: str | None
) -> None:
    text = (
        "deployments:\n  - name: x\n    entrypoint: flows/intake.py:process_inbox\n"
        f"    schedules:\n      - {{interval: {seconds}, timezone: {zone}}}\n"
    )
    path = write(tmp_path_factory.mktemp("yaml"), text)
    [spec] = load_specs(path, timezone=override)
    [schedule] = spec.schedules
    assert isinstance(schedule.schedule, IntervalSchedule)
    assert schedule.schedule.interval == timedelta(seconds=seconds)
    assert schedule.schedule.timezone == (override or zone)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployments: [{name: x}]", "needs a name and an entrypoint"),
        (
            "deployments: [{name: x, entrypoint: 'f.py:f', schedules: [{cron: '* * * * *', "
            "interval: 60}]}]",
            "cannot be read",
        ),
        (
            "deployments: [{name: x, entrypoint: 'f.py:f', triggers: [{type: event}]}]",
            "register it with `prefect deploy`",
        ),
        ("deployments: [", "cannot be read"),
    ],
)
def test_a_file_office_serve_cannot_serve_is_one_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeploymentsFileError, match=message) as caught:
        load_specs(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_practice_zone_overrides_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFICE_PRACTICE_TIMEZONE", raising=False)
    assert schedule_zone(Settings()) is None  # its default does not override the file
    monkeypatch.setenv("OFFICE_PRACTICE_TIMEZONE", "America/Chicago")
    assert schedule_zone(Settings()) == "America/Chicago"  # set, even to the default value


def test_serve_builds_each_deployment_with_its_schedules() -> None:
    specs = load_specs(timezone="America/Denver")
    deployments = asyncio.run(build_deployments(specs))
    assert [d.name for d in deployments] == [s.name for s in specs]
    for deployment, spec in zip(deployments, specs, strict=True):
        assert [s.slug for s in deployment.schedules or []] == [s.slug for s in spec.schedules]
        for schedule in deployment.schedules or []:
            assert schedule.schedule.timezone == "America/Denver"


@pytest.mark.parametrize("spec", load_specs(), ids=lambda s: s.name)
def test_default_parameters_fit_the_flow_signature(spec: DeploymentSpec) -> None:
    flow = _load_flow(spec.entrypoint)
    accepted = set(flow.parameters.properties)
    assert set(spec.parameters) <= accepted
    for schedule in spec.schedules:
        assert set(schedule.parameters) <= accepted


def test_deployments_file_lives_where_the_readme_says() -> None:
    assert DEPLOYMENTS_FILE.parts[-2:] == ("deployments", "prefect.yaml")


def test_office_serve_hands_an_idle_wake_up_to_the_on_arrival_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The watcher's wake-up names a deployment that exists, with the mailbox only, and a
    burst of wake-ups within a minute is one run (one idempotency key)."""
    import prefect.deployments

    from app.prefect_handoff import MAIL_ARRIVAL_DEPLOYMENT, wake_route_mail

    calls: list[dict[str, object]] = []

    async def record(name: str, **kwargs: object) -> None:
        calls.append({"name": name, **kwargs})

    monkeypatch.setattr(prefect.deployments, "arun_deployment", record)
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.0)
    asyncio.run(wake_route_mail("front-desk"))
    asyncio.run(wake_route_mail("front-desk"))
    asyncio.run(wake_route_mail("billing"))

    flow_name, _, deployment = MAIL_ARRIVAL_DEPLOYMENT.partition("/")
    spec = next(s for s in load_specs() if s.name == deployment)
    assert _load_flow(spec.entrypoint).name == flow_name
    assert [c["parameters"] for c in calls] == [{"mailbox": "front-desk"}] * 2 + [
        {"mailbox": "billing"}
    ]
    keys = [c["idempotency_key"] for c in calls]
    assert keys[0] == keys[1] != keys[2]
    assert all(c["timeout"] == 0 for c in calls)
