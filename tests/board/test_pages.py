"""The board's pages over HTTP: who sees which items, access records, the buttons (take,
close, dismiss, re-check), and items closing by themselves and coming back, as seen on the page.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers.work import Cleared, clear_work
from office.models import (
    AuditEntry,
    CheckStatus,
    Coverage,
    EligibilityCheck,
    Patient,
    PatientAccess,
    Payer,
    StaffLogin,
    WorkItem,
    WorkStatus,
)
from office.workqueue import CloseReason
from tests.board.conftest import Clock, FakeRecheck, csrf_of, sign_in
from tests.board.practice import (
    BILLING_KIND,
    FRONT_DESK_KINDS,
    NOW,
    Seeded,
    add_board_login,
    open_items,
    patient_name,
    seed_practice,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def seeded(factory: sessionmaker[Session]) -> Seeded:
    """Six visits: four front-desk items, two billing items; a login per role."""
    with transaction(factory) as session:
        practice = seed_practice(session, 6)
        open_items(
            session, practice, [FRONT_DESK_KINDS[0]], appointments=practice.appointment_ids[:4]
        )
        open_items(session, practice, [BILLING_KIND], appointments=practice.appointment_ids[4:])
        add_board_login(session, "desk@clinic.test", "front_desk")
        add_board_login(session, "bill@clinic.test", "billing")
        add_board_login(session, "boss@clinic.test", "office_manager")
    return practice


def _names(text: str, seeded: Seeded) -> list[int]:
    """Which of the seeded patients a page names, by index."""
    return [n for n in range(len(seeded.patient_ids)) if patient_name(n)[0] in text]


def _item(factory: sessionmaker[Session], item_id: int) -> WorkItem:
    with factory() as session:
        return session.get_one(WorkItem, item_id)


def _first_item(seeded: Seeded, kind: str) -> int:
    return next(item_id for key, item_id in sorted(seeded.item_ids.items()) if key.startswith(kind))


async def test_each_role_sees_its_own_items_and_the_manager_sees_all(
    client: httpx.AsyncClient, seeded: Seeded
) -> None:
    await sign_in(client, "bill@clinic.test")
    billing = (await client.get("/staff/today")).text
    assert _names(billing, seeded) == [4, 5]
    assert "Payer rejected the provider or payer setup" in billing
    await sign_in(client, "desk@clinic.test")
    desk = (await client.get("/staff/today")).text
    assert _names(desk, seeded) == [0, 1, 2, 3]
    await sign_in(client, "boss@clinic.test")
    boss = (await client.get("/staff/today")).text
    assert _names(boss, seeded) == [0, 1, 2, 3, 4, 5]
    # Blockers first; the visit's local time and clinic are on the item.
    assert boss.index("Blocks the visit") < boss.index("Needs action before the visit")
    assert "Riverside Clinic" in boss
    assert "Mesa Clinic" in boss
    assert "CST" in boss
    assert "MST" in boss


async def test_filters_by_clinic_role_and_kind(client: httpx.AsyncClient, seeded: Seeded) -> None:
    await sign_in(client, "boss@clinic.test")
    riverside = (await client.get(f"/staff/today?clinic={seeded.clinic_ids[0]}")).text
    assert _names(riverside, seeded) == [0, 2, 4]
    billing = (await client.get("/staff/today?role=billing")).text
    assert _names(billing, seeded) == [4, 5]
    kind = (await client.get(f"/staff/today?kind={FRONT_DESK_KINDS[0]}")).text
    assert _names(kind, seeded) == [0, 1, 2, 3]
    assert "Prior authorization required</a>: 4" in kind


async def test_a_page_records_who_saw_which_patient(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session], clock: Clock
) -> None:
    await sign_in(client, "bill@clinic.test")
    await client.get("/staff/today")
    visit = seeded.appointment_ids[4]
    clock.now += timedelta(minutes=1)
    page = await client.get(f"/staff/visits/{visit}")
    assert page.status_code == 200
    await client.get("/staff/trends")  # counts only: no patient, no record
    with factory() as session:
        login = session.scalars(select(StaffLogin.id).filter_by(email="bill@clinic.test")).one()
        rows = session.execute(
            select(
                PatientAccess.patient_id,
                PatientAccess.page,
                PatientAccess.appointment_id,
                PatientAccess.at,
            )
            .where(PatientAccess.login_id == login)
            .order_by(PatientAccess.id)
        ).all()
    seen = [(r.patient_id, r.page, r.appointment_id) for r in rows]
    assert sorted(seen[:2]) == [
        (seeded.patient_ids[4], "today", None),
        (seeded.patient_ids[5], "today", None),
    ]
    assert seen[2:] == [(seeded.patient_ids[4], "visit", visit)]
    assert [r.at for r in rows] == [NOW, NOW, NOW + timedelta(minutes=1)]


async def test_take_then_close_with_a_note(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "desk@clinic.test")
    page = (await client.get("/staff/today")).text
    item_id = _first_item(seeded, FRONT_DESK_KINDS[0])
    csrf = csrf_of(page)
    taken = await client.post(
        f"/staff/items/{item_id}/take",
        data={"csrf": csrf, "return_to": "/staff/today?role=front_desk"},
    )
    assert taken.status_code == 303
    assert taken.headers["location"] == "/staff/today?role=front_desk"
    after = (await client.get("/staff/today")).text
    assert "taken by Desk Staff" in after
    closed = await client.post(
        f"/staff/items/{item_id}/close", data={"csrf": csrf, "note": "auth #A-1 on file"}
    )
    assert closed.status_code == 303
    item = _item(factory, item_id)
    assert item.status is WorkStatus.DONE
    assert item.close_note == "auth #A-1 on file"
    staff_id = item.assignee_id
    assert item.closed_by == f"staff:{staff_id}"
    assert f'id="item-{item_id}"' not in (await client.get("/staff/today")).text
    with factory() as session:
        history = session.scalars(
            select(AuditEntry.field).filter_by(entity="work_items", entity_id=item_id)
        ).all()
    assert "assignee_id" in history
    assert "status" in history


async def test_dismissing_needs_a_reason(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "desk@clinic.test")
    csrf = csrf_of((await client.get("/staff/today")).text)
    item_id = _first_item(seeded, FRONT_DESK_KINDS[0])
    refused = await client.post(
        f"/staff/items/{item_id}/dismiss", data={"csrf": csrf, "reason": " "}
    )
    assert refused.status_code == 409
    assert _item(factory, item_id).status is WorkStatus.OPEN
    done = await client.post(
        f"/staff/items/{item_id}/dismiss", data={"csrf": csrf, "reason": "patient self-pays"}
    )
    assert done.status_code == 303
    item = _item(factory, item_id)
    assert item.status is WorkStatus.DISMISSED
    assert item.close_note == "patient self-pays"
    again = await client.post(f"/staff/items/{item_id}/close", data={"csrf": csrf})
    assert again.status_code == 409


async def test_forms_without_the_session_token_are_refused(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "desk@clinic.test")
    other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with other:
        await sign_in(other, "boss@clinic.test")
        foreign = csrf_of((await other.get("/staff/today")).text)
    item_id = _first_item(seeded, FRONT_DESK_KINDS[0])
    for data in ({}, {"csrf": ""}, {"csrf": foreign}):
        answer = await client.post(f"/staff/items/{item_id}/close", data=data)
        assert answer.status_code == 403
        assert "did not come from the board" in answer.text
    assert (
        await client.post(
            f"/staff/items/{item_id}/close",
            content=b"{}",
            headers={"content-type": "application/json"},
        )
    ).status_code == 403
    assert _item(factory, item_id).status is WorkStatus.OPEN


async def test_another_roles_item_cannot_be_worked(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "bill@clinic.test")
    csrf = csrf_of((await client.get("/staff/today")).text)
    item_id = _first_item(seeded, FRONT_DESK_KINDS[0])
    answer = await client.post(f"/staff/items/{item_id}/take", data={"csrf": csrf})
    assert answer.status_code == 403
    assert _item(factory, item_id).assignee_id is None


async def test_items_close_by_themselves_and_a_recurrence_opens_a_new_one(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "desk@clinic.test")
    visit = seeded.appointment_ids[0]
    item_id = _first_item(seeded, FRONT_DESK_KINDS[0])
    assert f'id="item-{item_id}"' in (await client.get("/staff/today")).text
    with transaction(factory) as session:
        clear_work(session, [Cleared(CloseReason.CHECK_CLEAN, appointment_id=visit)], now=NOW)
    assert f'id="item-{item_id}"' not in (await client.get("/staff/today")).text
    visit_page = (await client.get(f"/staff/visits/{visit}")).text
    assert "check_clean" in visit_page  # closed, with the cause that cleared it
    with transaction(factory) as session:
        again = open_items(session, seeded, [FRONT_DESK_KINDS[0]], appointments=[visit])
    (new_id,) = again.values()
    assert new_id != item_id
    page = (await client.get("/staff/today")).text
    assert f'id="item-{new_id}"' in page
    assert patient_name(0)[0] in page


async def test_recheck_starts_a_run_and_the_visit_shows_it_until_the_answer_lands(
    client: httpx.AsyncClient,
    seeded: Seeded,
    factory: sessionmaker[Session],
    recheck: FakeRecheck,
    clock: Clock,
) -> None:
    await sign_in(client, "desk@clinic.test")
    visit = seeded.appointment_ids[0]
    page = (await client.get(f"/staff/visits/{visit}")).text
    assert "No answered eligibility check" in page
    answer = await client.post(f"/staff/visits/{visit}/recheck", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/staff/visits/{visit}"
    assert recheck.calls == [(visit, f"board-recheck-{visit}-{int(NOW.timestamp() // 60)}")]
    pending = (await client.get(f"/staff/visits/{visit}")).text
    assert "Check requested at 9:00 AM CST" in pending
    clock.now += timedelta(minutes=2)
    with transaction(factory) as session:
        payer = Payer(name="Blue Test", payer_code="BT1")
        session.add(payer)
        session.flush()
        patient_id = seeded.patient_ids[0]
        cover = Coverage(patient_id=patient_id, payer_id=payer.id, member_id="M1", plan_name="Gold")
        session.add(cover)
        session.flush()
        session.add(
            EligibilityCheck(
                trace="T-1",
                appointment_id=visit,
                coverage_id=cover.id,
                patient_id=patient_id,
                payer_id=payer.id,
                date_of_service=NOW.date(),
                service_type="30",
                status=CheckStatus.ACTIVE,
                result={"plan_name": "Gold PPO"},
                checked_at=clock.now,
            )
        )
    landed = (await client.get(f"/staff/visits/{visit}")).text
    assert "Check requested" not in landed
    assert "Gold PPO" in landed
    assert "Blue Test" in landed


async def test_recheck_says_so_when_prefect_is_down(
    client: httpx.AsyncClient, seeded: Seeded, recheck: FakeRecheck, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "desk@clinic.test")
    visit = seeded.appointment_ids[0]
    page = (await client.get(f"/staff/visits/{visit}")).text
    recheck.fail = True
    answer = await client.post(f"/staff/visits/{visit}/recheck", data={"csrf": csrf_of(page)})
    assert answer.status_code == 503
    assert "Check requested" not in (await client.get(f"/staff/visits/{visit}")).text


async def test_trends_draw_the_chart_inline(client: httpx.AsyncClient, seeded: Seeded) -> None:
    await sign_in(client, "boss@clinic.test")
    page = await client.get("/staff/trends")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "<?xml" not in page.text
    assert "median time to close" in page.text


async def test_names_are_escaped(
    client: httpx.AsyncClient, seeded: Seeded, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        patient = session.get_one(Patient, seeded.patient_ids[0])
        patient.last_name = "<script>alert(1)</script>"
    await sign_in(client, "desk@clinic.test")
    page = (await client.get("/staff/today")).text
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
