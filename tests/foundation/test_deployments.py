"""deployments/prefect.yaml is what `office serve` serves and `prefect deploy` registers:
every entry must resolve to a flow, and every schedule must name its time zone."""

from __future__ import annotations

import asyncio

import pytest
from prefect import Flow

from app.prefect_handoff import DEPLOYMENTS_FILE, _load_flow, build_deployments, load_specs


def test_every_entrypoint_is_a_flow() -> None:
    specs = load_specs()
    assert {spec.name for spec in specs} >= {"intake"}
    for spec in specs:
        assert isinstance(_load_flow(spec.entrypoint), Flow), spec.entrypoint


def test_every_schedule_names_its_time_zone() -> None:
    for spec in load_specs():
        for schedule in spec.schedules:
            assert schedule.get("timezone"), f"{spec.name} has a schedule without a time zone"


def test_serve_builds_each_deployment_with_the_practice_zone() -> None:
    deployments = asyncio.run(build_deployments("America/Denver"))
    assert len(deployments) == len(load_specs())
    for deployment in deployments:
        for schedule in deployment.schedules or []:
            assert schedule.schedule.timezone == "America/Denver"


@pytest.mark.parametrize("spec", load_specs(), ids=lambda s: s.name)
def test_default_parameters_fit_the_flow_signature(spec: object) -> None:
    flow = _load_flow(spec.entrypoint)  # type: ignore[attr-defined]
    accepted = set(flow.parameters.properties)
    assert set(spec.parameters) <= accepted  # type: ignore[attr-defined]
    for schedule in spec.schedules:  # type: ignore[attr-defined]
        assert set(schedule.get("parameters") or {}) <= accepted


def test_deployments_file_lives_where_the_readme_says() -> None:
    assert DEPLOYMENTS_FILE.parts[-2:] == ("deployments", "prefect.yaml")
