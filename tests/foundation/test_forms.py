"""Every deployment's run form, as `prefect deploy` and `office serve` register it: a title and a
description per field, bounds on numbers, no free text that could carry PHI, and instants that
may come without an offset (read as practice time) past both the UI's and the API's checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect import Flow
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate

from app.prefect_handoff import _load_flow, load_specs
from flows import runtime
from flows.forms import practice_instant
from office.settings import Settings

SPECS = load_specs()
FLOWS: dict[str, Flow[Any, Any]] = {spec.entrypoint: _load_flow(spec.entrypoint) for spec in SPECS}
INSTANT_FIELDS = {"now"}
DAY_FIELDS = {"last_day"}  # a calendar day, YYYY-MM-DD by pattern
TEXT_FIELDS = {"mailbox"}  # a mailbox's configured name: a pattern, never free text


def schema(entrypoint: str) -> dict[str, Any]:
    return parameter_schema(FLOWS[entrypoint]).model_dump()


def ui_errors(values: dict[str, Any], entrypoint: str, *, partial: bool = False) -> list[Any]:
    """What the UI's form check (/ui/schemas/validate: formats checked) finds wrong."""
    return validate(values, schema(entrypoint), raise_on_error=False, ignore_required=partial)


def api_accepts(values: dict[str, Any], entrypoint: str) -> bool:
    """What creating a run through the API checks (enforce_parameter_schema)."""
    return not validate(values, schema(entrypoint), raise_on_error=True)


@pytest.mark.parametrize("entrypoint", sorted(FLOWS))
def test_every_field_has_a_title_a_description_and_a_phi_free_type(entrypoint: str) -> None:
    for name, field in schema(entrypoint)["properties"].items():
        assert field["title"] != name, (entrypoint, name)
        assert field["title"][0].isupper(), (entrypoint, name)
        assert len(field.get("description") or "") > 20, (entrypoint, name)
        kinds = [field] if "type" in field else field["anyOf"]
        for kind in kinds:
            if kind["type"] == "integer":
                assert "minimum" in kind, (entrypoint, name)
            elif kind["type"] == "string":
                assert name in INSTANT_FIELDS | DAY_FIELDS | TEXT_FIELDS, (entrypoint, name)
                assert "pattern" in kind, (entrypoint, name)
            else:
                assert kind["type"] in {"boolean", "null"}, (entrypoint, name)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_deployments_defaults_and_schedules_pass_its_form(spec: Any) -> None:
    """Defaults (the run fills what is required) and each schedule's own values."""
    assert not ui_errors(spec.parameters, spec.entrypoint, partial=True)
    for schedule in spec.schedules:
        merged = {**spec.parameters, **schedule.parameters}
        assert not ui_errors(merged, spec.entrypoint, partial=True)


@pytest.mark.parametrize(
    "typed",
    ["2026-12-01T08:30", "2026-12-01 08:30", "2026-12-01T08:30:00", "2026-12-01T14:30:00Z"],
)
def test_an_instant_with_or_without_an_offset_passes_the_form_and_the_api(typed: str) -> None:
    for entrypoint, flow in FLOWS.items():
        if "now" in flow.parameters.properties:
            values = {"now": typed, **_required(entrypoint)}
            assert not ui_errors(values, entrypoint), entrypoint
            assert api_accepts(values, entrypoint), entrypoint


def _required(entrypoint: str) -> dict[str, Any]:
    """A valid value for each required field besides `now` (a staff id, a last day)."""
    found = schema(entrypoint)
    return {
        name: "2026-12-31" if name in DAY_FIELDS else 1
        for name in found.get("required", [])
        if name != "now"
    }


@pytest.mark.parametrize("typed", ["tomorrow", "2026-12-01", "08:30", "2026-12-01T08:30 Jane"])
def test_what_is_not_an_instant_is_refused_by_the_form(typed: str) -> None:
    assert ui_errors({"now": typed}, "flows/reminders.py:send_reminders")


def test_bounds_and_patterns_are_refused_by_the_form() -> None:
    assert ui_errors({"days_ahead": 61}, "flows/eligibility.py:verify_eligibility")
    assert ui_errors({"appointment_id": 0}, "flows/eligibility.py:verify_appointment")
    assert ui_errors({"mailbox": "Jane Doe <jane@x.test>"}, "flows/mail.py:route_mail")
    assert not ui_errors({"mailbox": "front-desk"}, "flows/mail.py:route_mail")


def test_an_instant_without_an_offset_is_practice_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "_override", runtime._override)  # restored afterwards
    runtime.use_office(Settings(home=tmp_path, practice_timezone="America/Denver"))
    assert practice_instant(datetime(2026, 12, 1, 8, 30)) == datetime(
        2026, 12, 1, 15, 30, tzinfo=UTC
    )
    aware = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert practice_instant(aware) == aware
    assert practice_instant(None).tzinfo is not None


def test_reminders_can_be_run_dry_from_the_form() -> None:
    fields = schema("flows/reminders.py:send_reminders")["properties"]
    assert fields["dry_run"]["type"] == "boolean"
    assert fields["dry_run"]["default"] is False
