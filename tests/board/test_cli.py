"""`office staff` and `office audit access` through the real command line (typer's runner)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.models import Patient, StaffLogin
from office.settings import Settings
from office.staff_auth import link_login, record_access
from tests.board.practice import seed_practice

LINK = re.compile(r"http://127\.0\.0\.1:8400/staff/set-password\?token=(\S+)")


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }


@pytest.mark.usefixtures("engine")
def test_login_add_prints_a_one_time_link(
    env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    args = ["staff", "login-add", "Pat@Clinic.test", "--role", "billing"]
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 1
    assert "first and last name" in refused.output
    result = runner.invoke(app, [*args, "--first-name", "Pat", "--last-name", "Ng"], env=env)
    assert result.exit_code == 0, result.output
    found = LINK.search(result.output)
    assert found
    with factory() as session:
        login = link_login(session, found.group(1), now=datetime.now(UTC))
        assert login.email == "pat@clinic.test"
        assert login.role == "billing"
        assert login.password_hash is None
    listed = runner.invoke(app, ["staff", "logins"], env=env)
    assert "pat@clinic.test" in listed.output
    assert "not set" in listed.output
    bad_role = runner.invoke(
        app, ["staff", "login-add", "x@clinic.test", "--role", "boss"], env=env
    )
    assert bad_role.exit_code == 1
    assert "role must be one of" in bad_role.output


@pytest.mark.usefixtures("engine")
def test_login_add_with_a_prompt_asks_twice(
    env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    args = ["staff", "login-add", "lee@clinic.test", "--role", "front_desk"]
    names = ["--first-name", "Lee", "--last-name", "Ho", "--prompt"]
    differ = runner.invoke(
        app, [*args, *names], input="a long password 1\nanother one 22\n", env=env
    )
    assert differ.exit_code == 1
    assert "differ" in differ.output
    result = runner.invoke(
        app, [*args, *names], input="a long password 1\na long password 1\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "password set" in result.output
    assert "a long password 1" not in result.output.replace("password: ", "")
    with factory() as session:
        stored = session.scalars(select(StaffLogin.password_hash)).one()
    assert stored
    assert stored.startswith("$argon2id$")


def test_audit_access_lists_who_saw_the_patient(
    env: dict[str, str], factory: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            app,
            [
                "staff",
                "login-add",
                "a@clinic.test",
                "--role",
                "billing",
                "--first-name",
                "A",
                "--last-name",
                "B",
            ],
            env=env,
        ).exit_code
        == 0
    )
    with transaction(factory) as session:
        seeded = seed_practice(session, 2)
        login_id = session.scalars(select(StaffLogin.id)).one()
        for day in (1, 5):
            record_access(
                session,
                login_id=login_id,
                patient_ids=[seeded.patient_ids[0]],
                page="visit",
                now=datetime(2026, 11, day, 14, 30, tzinfo=UTC),
                client="10.1.2.3",
                appointment_id=seeded.appointment_ids[0],
            )
        mrn = session.get_one(Patient, seeded.patient_ids[0]).mrn
        other = session.get_one(Patient, seeded.patient_ids[1]).mrn
    every = runner.invoke(app, ["audit", "access", "--patient", mrn], env=env)
    assert every.exit_code == 0, every.output
    assert "2026-11-01 14:30:00" in every.output
    assert "2026-11-05 14:30:00" in every.output
    assert "a@clinic.test" in every.output
    assert "2 records" in every.output
    since = runner.invoke(
        app, ["audit", "access", "--patient", mrn, "--since", "2026-11-02"], env=env
    )
    assert "2026-11-01" not in since.output
    assert "1 record\n" in since.output
    assert (
        "nobody has seen"
        in runner.invoke(app, ["audit", "access", "--patient", other], env=env).output
    )
    unknown = runner.invoke(app, ["audit", "access", "--patient", "NOPE"], env=env)
    assert unknown.exit_code == 1
    assert "no patient has this MRN" in unknown.output
