"""Several machines: each worker runs its flows from its own copy of the code, whatever the
shell that ran `prefect deploy` had set; `office prefect setup` puts each payer's limits and
the zombie-run automation on the server, once however often it runs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.deployments.steps.core import run_steps
from prefect.utilities.templating import apply_values
from sqlalchemy.orm import Session, sessionmaker

from app.prefect_handoff import DEPLOYMENTS_FILE
from app.prefect_setup import ZOMBIE_AUTOMATION, apply, zombie_automation
from flows.code_dir import INSTALLED, enter_code_dir
from office.db import transaction
from office.models import Payer
from office.settings import Settings

PULL: list[dict[str, Any]] = yaml.safe_load(DEPLOYMENTS_FILE.read_text())["pull"]


def test_prefect_deploy_freezes_nothing_from_its_shell_into_the_pull_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`prefect deploy` templates pull steps with its own environment (`$` placeholders)."""
    monkeypatch.setenv("OFFICE_CODE_DIR", "/the/deploying/machine")
    assert apply_values(PULL, {}, remove_notset=False) == PULL
    assert "/the/deploying/machine" not in repr(apply_values(PULL, dict(os.environ)))
    assert [next(iter(step)) for step in PULL] == ["flows.code_dir.enter_code_dir"]


def code_copy(tmp_path: Path) -> Path:
    (tmp_path / "code" / "flows").mkdir(parents=True)
    return tmp_path / "code"


# Prefect's step runner asks its API for the variables and blocks a step may name: without
# the session's server it starts an ephemeral one, whose 20 s start-up a loaded CI misses.
@pytest.mark.usefixtures("prefect_harness")
def test_the_pull_step_reads_the_workers_own_value_when_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    copy = code_copy(tmp_path)
    monkeypatch.setenv("OFFICE_CODE_DIR", str(copy))
    outputs = asyncio.run(run_steps(PULL, print_function=lambda *_: None))
    assert Path.cwd() == copy
    assert outputs["directory"] == str(copy)


def test_unset_it_is_the_installed_copy_and_a_wrong_value_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OFFICE_CODE_DIR", raising=False)
    assert enter_code_dir() == {"directory": str(INSTALLED)}
    assert Path.cwd() == INSTALLED
    monkeypatch.setenv("OFFICE_CODE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"OFFICE_CODE_DIR=.*nowhere .* no flows/ folder"):
        enter_code_dir()


def test_the_zombie_automation_crashes_runs_whose_heartbeats_stop() -> None:
    automation = zombie_automation(heartbeat_seconds=30)
    trigger = automation.trigger
    assert trigger.posture == "Proactive"  # type: ignore[union-attr]
    assert trigger.after == {"prefect.flow-run.heartbeat"}  # type: ignore[union-attr]
    assert "prefect.flow-run.Completed" in trigger.expect  # type: ignore[union-attr]
    assert trigger.within.total_seconds() == 90  # type: ignore[union-attr]
    [action] = automation.actions
    assert action.type == "change-flow-run-state"
    assert action.state == "CRASHED"  # type: ignore[union-attr]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_setup_sets_every_payers_limits_and_one_automation(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    from prefect.client.orchestration import get_client

    with transaction(factory) as session:
        session.add_all(
            [
                Payer(name="Acme", payer_code="SETUPA", concurrency_limit=4, rate_per_second=2.0),
                Payer(name="Bolt", payer_code="SETUPB"),
            ]
        )
    first = asyncio.run(apply(settings, factory))
    again = asyncio.run(apply(settings, factory))

    assert first.limits == again.limits == ["payer:SETUPA", "payer:SETUPB"]

    async def read() -> tuple[list[Any], Any]:
        async with get_client() as client:
            found = await client.read_automations_by_name(ZOMBIE_AUTOMATION)
            limit = await client.read_global_concurrency_limit_by_name("payer:SETUPB")
            return found, limit

    automations, default_limit = asyncio.run(read())
    assert len(automations) == 1
    assert automations[0].enabled
    assert default_limit.limit == settings.payer_concurrency
    assert default_limit.slot_decay_per_second == 0.0
