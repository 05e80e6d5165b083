"""Completing items where people do it: the board's item page (with an evidence upload),
the signed link in the mail (two clicks), and `office onboarding complete`; each
completion audited exactly once. Also the board's onboarding page and the CLI's
`templates check` and `status` (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.board import board_router
from app.cli import app as cli
from app.onboarding_links_web import onboarding_link_router
from office.db import transaction
from office.models import AuditEntry, ChecklistItem, ItemStatus, StaffLogin
from office.onboarding.links import item_link
from office.onboarding.templates import DEFAULT_DIRECTORY
from office.settings import Settings
from office.staff_auth import add_login, set_password
from tests.onboarding.practice import NOW, Team, add_hires, seed_team

PASSWORD = "onboarding test password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
KEY = "test-link-secret-32-bytes-or-longer"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def team(factory: sessionmaker[Session]) -> Team:
    with transaction(factory) as session:
        found = seed_team(session)
        add_hires(session, found, 1, roles=("medical_assistant",))
        for email, role in (
            ("ignatius.it@onboarding.test", "it"),
            ("ottoline.office_manager@onboarding.test", "office_manager"),
        ):
            added = add_login(session, email, role, now=NOW)
            set_password(session, session.get_one(StaffLogin, added.login_id), PASSWORD, now=NOW)
    return found


@pytest.fixture
async def client(
    settings: Settings, factory: sessionmaker[Session]
) -> AsyncIterator[httpx.AsyncClient]:
    web = FastAPI()
    web.include_router(board_router(settings, factory, clock=lambda: NOW), prefix="/staff")
    web.include_router(onboarding_link_router(settings, factory, clock=lambda: NOW))
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    client.cookies.clear()
    form = await client.get("/staff/login")
    token = CSRF.search(form.text)
    assert token is not None
    answer = await client.post(
        "/staff/login", data={"email": email, "password": PASSWORD, "csrf": token.group(1)}
    )
    assert answer.status_code == 303


def item_id(session: Session, team: Team, key: str) -> int:
    return session.scalars(
        select(ChecklistItem.id).where(
            ChecklistItem.staff_id == team.hires[0], ChecklistItem.key == key
        )
    ).one()


def file_facts(path: Path) -> tuple[bytes, int]:
    """A stored file's bytes and permission bits."""
    return path.read_bytes(), stat.S_IMODE(os.stat(path).st_mode)


def audit(session: Session, item: int) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "checklist_items", AuditEntry.entity_id == item
            )
        )
    )


@pytest.mark.anyio
async def test_the_board_lists_items_under_their_owner_and_completes_with_evidence(
    client: httpx.AsyncClient, factory: sessionmaker[Session], team: Team, settings: Settings
) -> None:
    with factory() as session:
        email = item_id(session, team, "email_account")
        cpr = item_id(session, team, "cpr_certification")
    await sign_in(client, "ignatius.it@onboarding.test")
    listing = await client.get("/staff/onboarding")
    assert listing.status_code == 200
    assert "Ignatius Thistlewood (IT)" in listing.text
    assert "Practice email account" in listing.text
    assert "Waits on: HIPAA privacy and security training" in listing.text  # the EHR account
    assert "CPR/BLS certification" not in listing.text  # the new hire's, not IT's
    page = await client.get(f"/staff/onboarding/items/{email}")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    done = await client.post(
        f"/staff/onboarding/items/{email}/complete",
        data={"csrf": csrf.group(1), "completed_on": "2026-12-03"},
        files={"unused": ("x.txt", b"")},
    )
    assert done.status_code == 303
    refused = await client.post(
        f"/staff/onboarding/items/{cpr}/complete",
        data={"csrf": csrf.group(1)},
        files={"evidence": ("card.pdf", b"%PDF card")},
    )
    assert refused.status_code == 403
    forged = await client.post(
        f"/staff/onboarding/items/{email}/complete",
        data={"csrf": "wrong"},
        files={"evidence": ("card.pdf", b"%PDF card")},
    )
    assert forged.status_code == 403
    await sign_in(client, "ottoline.office_manager@onboarding.test")
    page = await client.get(f"/staff/onboarding/items/{cpr}")
    assert 'type="file" name="evidence"' in page.text
    csrf = CSRF.search(page.text)
    assert csrf is not None
    card = b"%PDF-1.4 BLS card"
    done = await client.post(
        f"/staff/onboarding/items/{cpr}/complete",
        data={"csrf": csrf.group(1), "completed_on": "2026-12-02"},
        files={"evidence": ("Peregrine BLS card.pdf", card, "application/pdf")},
    )
    assert done.status_code == 303
    with factory() as session:
        assert session.get_one(ChecklistItem, email).completed_via == "board"
        completed = session.get_one(ChecklistItem, cpr)
        entries = audit(session, cpr)
        assert len(audit(session, email)) == 1
    assert completed.status is ItemStatus.DONE
    assert len(entries) == 1
    assert hashlib.sha256(card).hexdigest() in (entries[0].after or "")
    stored = Path(completed.evidence["path"])
    assert stored.is_relative_to(settings.home)
    assert "Peregrine" not in str(stored)
    assert file_facts(stored) == (card, 0o600)
    again = await client.get(f"/staff/onboarding/items/{cpr}")
    assert "sha256" in again.text
    assert 'id="complete"' not in again.text


@pytest.mark.anyio
async def test_a_signed_link_asks_then_completes_once(
    client: httpx.AsyncClient, factory: sessionmaker[Session], team: Team
) -> None:
    with factory() as session:
        w4 = item_id(session, team, "w4_form")
        cpr = item_id(session, team, "cpr_certification")
    token = item_link(KEY, w4, now=NOW)
    asked = await client.get(f"/o/{token}")
    assert asked.status_code == 200
    assert "Federal tax withholding" in asked.text
    with factory() as session:
        assert session.get_one(ChecklistItem, w4).status is ItemStatus.OPEN  # looking is free
    answered = await client.post(f"/o/{token}", data={"signature": "P. Fairweather"})
    assert answered.status_code == 200
    assert "marked done" in answered.text
    second = await client.post(f"/o/{token}", data={"signature": "P. Fairweather"})
    assert second.status_code == 409
    with factory() as session:
        item = session.get_one(ChecklistItem, w4)
        assert item.completed_via == "link"
        assert item.evidence["signature"] == "P. Fairweather"
        assert len(audit(session, w4)) == 1
    on_board = await client.get(f"/o/{item_link(KEY, cpr, now=NOW)}")
    assert f"/staff/onboarding/items/{cpr}" in on_board.text
    assert (await client.get("/o/AAAAAAAAAAAAAAAAAAAAAAA")).status_code == 404


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "OFFICE_HOME": str(settings.home),
        "OFFICE_DATABASE_URL": settings.database_url,
        "OFFICE_SECRET_KEY": KEY,
        "COLUMNS": "200",
    }


def test_the_cli_completes_with_evidence_and_shows_status(
    env: dict[str, str], factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    runner = CliRunner()
    with factory() as session:
        hipaa = item_id(session, team, "hipaa_training")
    certificate = tmp_path / "hipaa.pdf"
    certificate.write_bytes(b"%PDF hipaa certificate")
    missing = runner.invoke(cli, ["onboarding", "complete", str(hipaa)], env=env)
    assert missing.exit_code == 1
    assert "needs the course version" in missing.output
    result = runner.invoke(
        cli,
        [
            "onboarding",
            "complete",
            str(hipaa),
            "--evidence",
            str(certificate),
            "--course-version",
            "2026.2",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(b"%PDF hipaa certificate").hexdigest() in result.output
    with factory() as session:
        assert session.get_one(ChecklistItem, hipaa).completed_via == "cli"
        assert len(audit(session, hipaa)) == 1
    status = runner.invoke(cli, ["onboarding", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "Peregrine00000 Fairweather" in status.output
    assert "onboarding" in status.output


def test_templates_check_names_the_broken_file_item_and_field(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["onboarding", "templates", "check"], env={"COLUMNS": "200"})
    assert good.exit_code == 0, good.output
    assert "6 templates valid" in good.output
    broken = tmp_path / "checklists"
    shutil.copytree(DEFAULT_DIRECTORY, broken)
    path = broken / "nurse.yaml"
    path.write_text(path.read_text().replace("owner: compliance", "owner: auditor", 1))
    bad = runner.invoke(
        cli,
        ["onboarding", "templates", "check", "--directory", str(broken)],
        env={"COLUMNS": "200"},
    )
    assert bad.exit_code == 1
    assert "nurse.yaml: item nursing_license: field owner: 'auditor'" in bad.output
