"""`office eligibility`: parse a 271 (table, JSON, bad input) and run the flows by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from app.cli_eligibility import eligibility_app
from flows import runtime
from office.db import transaction
from office.eligibility import local_today
from office.models import AppointmentStatus
from office.settings import Settings
from tests.eligibility.builders import ZONE, FakePayer, appointment, clinic, days, patient

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "x12"
ACTIVE = SAMPLES / "LinuxForHealth__x12__subscriber-health-benefit-check.271"
REJECTED = SAMPLES / "Inteligenz__X12Parser__ValidationOnAll.txt"
INQUIRY = SAMPLES / "LinuxForHealth__x12__subscriber-health-benefit-check.270"

runner = CliRunner()


def test_parse_json_has_one_object_per_patient_loop() -> None:
    result = runner.invoke(eligibility_app, ["parse", str(ACTIVE), "--json"])
    assert result.exit_code == 0, result.stderr
    [loop] = json.loads(result.stdout)
    assert loop["status"] == "active"
    assert loop["member_id"] == "123456789"
    assert loop["plan_begin"] == "2006-01-01"
    assert loop["plan_end"] is None
    copays = [b for b in loop["benefits"] if b["code"] == "B"]
    assert [(b["network"], b["amount"], b["time_period"]) for b in copays] == [
        ("in", "10.00", "27"),
        ("out", "30.00", "27"),
    ]
    assert all(isinstance(b["service_types"], list) for b in loop["benefits"])
    assert all(set(b) >= {"coverage_level", "percent"} for b in loop["benefits"])
    assert loop["aaa"] == []


def test_parse_json_lists_rejections_with_their_action() -> None:
    result = runner.invoke(eligibility_app, ["parse", str(REJECTED), "--json"])
    assert result.exit_code == 0
    loops = json.loads(result.stdout)
    assert [loop["status"] for loop in loops] == ["unverified", "unverified"]
    first = loops[0]["aaa"][0]
    assert first == {"loop": "2000A", "code": "79", "followup": "N", "action": "fix_provider_setup"}


def test_parse_prints_a_table_per_patient_loop() -> None:
    result = runner.invoke(eligibility_app, ["parse", str(REJECTED)], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "Patient loop 1 of 2 (subscriber)" in result.stdout
    assert "Patient loop 2 of 2 (dependent)" in result.stdout
    assert "Unable to Respond at Current Time" in result.stdout
    assert "Active Coverage (1)" in result.stdout


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (INQUIRY, "is not a readable 271"),
        (SAMPLES / "no-such-file.271", "cannot read"),
        (SAMPLES, "cannot read"),
    ],
)
def test_parse_bad_input_is_one_line_and_exit_2(path: Path, message: str) -> None:
    result = runner.invoke(eligibility_app, ["parse", str(path), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.sampled_from([b"", b"ISA*", b"\xef\xbb\xbfISA"]))
def test_parse_never_crashes_on_garbage(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / "input.271"
    target.write_bytes(data)
    result = runner.invoke(eligibility_app, ["parse", str(target), "--json"])
    assert result.exit_code in (0, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_run_and_check_run_the_flows(
    office_app: runtime.Office,
    fake_payer: FakePayer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(settings.home))
    monkeypatch.setenv("OFFICE_DATABASE_URL", settings.db_url)
    # The CLI runs the flows on the real clock.
    today = local_today(datetime.now(UTC), ZONE)
    with transaction(office_app.factory) as session:
        place = clinic(session)
        first, _ = patient(session, place, 1)
        second, _ = patient(session, place, 2)
        appointment(session, place, first, day=today + days(1))
        later = appointment(session, place, second, day=today + days(20))
        gone = appointment(
            session, place, second, day=today + days(2), status=AppointmentStatus.CANCELLED
        )

    checked = runner.invoke(eligibility_app, ["run", "--days-ahead", "3"])
    assert checked.exit_code == 0, checked.stderr
    assert "Eligibility run" in checked.stdout
    assert len(fake_payer.requests) == 1

    one = runner.invoke(eligibility_app, ["check", str(later)])
    assert one.exit_code == 0, one.stderr
    assert f"Appointment {later}" in one.stdout
    assert len(fake_payer.requests) == 2

    skipped = runner.invoke(eligibility_app, ["check", str(gone)])
    assert skipped.exit_code == 1
    assert "was not checked" in skipped.stderr


def test_run_refuses_a_database_that_is_not_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OFFICE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(eligibility_app, ["run"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: the database is not up to date: run `office db upgrade` first\n"
    )
