"""A real browser on the board: headless Chromium signs in, takes an item on Today and closes
it with a note; the database and the page show what changed.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). The app runs
under uvicorn on a free loopback port, in a thread of this process.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from app.webapp import create_app
from office.db import transaction
from office.models import StaffLogin, WorkItem, WorkStatus
from office.settings import Settings
from tests.board.conftest import FakeRecheck
from tests.board.practice import (
    FRONT_DESK_KINDS,
    PASSWORD,
    add_board_login,
    open_items,
    patient_name,
    seed_practice,
)

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="needs chromium and chromium-driver (.ci/run installs them)",
    ),
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]
WAIT = 30  # seconds a page may take to appear on a loaded machine; the test never sleeps


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def base_url(settings: Settings, factory: sessionmaker[Session]) -> Iterator[str]:
    port = _free_port()
    app = create_app(settings, factory, recheck=FakeRecheck())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="board-under-test")
    thread.start()
    pause = threading.Event()  # never set: a bounded wait between looks
    for _ in range(WAIT * 20):
        if server.started or not thread.is_alive():
            break
        pause.wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _shows(locator: tuple[str, str], text: str) -> Callable[[object], bool]:
    """A wait condition: the element `locator` finds, looked up afresh on each try, shows `text`.

    Looking it up afresh, not waiting for the old card to go stale, is what makes the wait
    safe across the form's post and redirect: chromedriver may answer a look at a node of the
    page being replaced with "Node with given id does not belong to the document", an error
    that `staleness_of` does not expect and lets through (CI saw it once).
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.remote.webdriver import WebDriver

    def shows(driver: object) -> bool:
        assert isinstance(driver, WebDriver)
        try:
            return text in driver.find_element(*locator).text
        except WebDriverException:  # not there yet, or the page changed under the look (a
            return False  # stale node, the inspector's "does not belong"): look again

    return shows


def test_sign_in_take_an_item_and_close_it_with_a_note(
    base_url: str, browser: object, factory: sessionmaker[Session]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    with transaction(factory) as session:
        seeded = seed_practice(session, 3)
        items = open_items(session, seeded, [FRONT_DESK_KINDS[0]])
        add_board_login(session, "desk@clinic.test", "front_desk")
    item_id = min(items.values())
    wait = WebDriverWait(browser, WAIT)

    browser.get(f"{base_url}/staff/today")  # not signed in: the sign-in page
    wait.until(seen.presence_of_element_located((By.NAME, "password")))
    browser.find_element(By.NAME, "email").send_keys("desk@clinic.test")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    card = wait.until(seen.presence_of_element_located((By.ID, f"item-{item_id}")))
    assert browser.current_url == f"{base_url}/staff/today"
    assert patient_name(0)[0] in card.text
    assert "not taken" in card.text

    card.find_element(By.XPATH, ".//button[normalize-space()='Take it']").click()
    wait.until(_shows((By.ID, f"item-{item_id}"), "taken by Desk Staff"))
    card = browser.find_element(By.ID, f"item-{item_id}")
    with factory() as session:
        item = session.get_one(WorkItem, item_id)
        desk = session.query(StaffLogin).filter_by(email="desk@clinic.test").one()
        assert item.assignee_id == desk.staff_id
        assert item.status is WorkStatus.OPEN

    note = card.find_element(By.NAME, "note")
    note.send_keys("authorization A-77 on file")
    card.find_element(By.XPATH, ".//button[normalize-space()='Close']").click()
    wait.until(_shows((By.TAG_NAME, "main"), "2 open items"))
    assert not browser.find_elements(By.ID, f"item-{item_id}")
    with factory() as session:
        item = session.get_one(WorkItem, item_id)
        assert item.status is WorkStatus.DONE
        assert item.close_note == "authorization A-77 on file"
        assert item.closed_by == f"staff:{desk.staff_id}"
