"""The one way a command gets Prefect's API without PREFECT_API_URL: `office serve`'s server
when it runs for the home, else a real `prefect server start` of its own that dies with it."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from app.prefect_server import PrefectServer, PrefectServerError, home_server, port_taken
from app.serve import _watch as watch_prefect
from office.settings import Settings
from tests.app.processes import alive, in_group, wait_for

SLOW_START = Path(__file__).with_name("slow_start.py")


def home_settings(home: Path, **values: object) -> Settings:
    return Settings(home=home, **values)  # type: ignore[arg-type]


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[str]:
    """A loopback server answering /api/health as Prefect's does; yields its API URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


@pytest.fixture
def serve_lock(tmp_path: Path) -> Iterator[Path]:
    """The home's server lock, held as a running `office serve` holds it."""
    folder = tmp_path / "home" / "prefect"
    folder.mkdir(parents=True)
    descriptor = os.open(folder / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    yield folder
    os.close(descriptor)


def record(folder: Path, api_url: str, pid: int) -> None:
    ui_url = api_url.removesuffix("/api")
    (folder / "server.json").write_text(
        json.dumps({"pid": pid, "api_url": api_url, "ui_url": ui_url})
    )


def test_a_command_uses_the_server_office_serve_recorded(serve_lock: Path, answering: str) -> None:
    record(serve_lock, answering, os.getpid())
    with home_server(home_settings(serve_lock.parent), serving=False) as server:
        assert server.api_url == answering
        assert not server.started


def test_a_second_office_serve_on_the_home_is_refused(serve_lock: Path, answering: str) -> None:
    record(serve_lock, answering, os.getpid())
    with (
        pytest.raises(PrefectServerError, match=rf"already running .* \(pid {os.getpid()}\)"),
        home_server(home_settings(serve_lock.parent), serving=True),
    ):
        pass


@pytest.mark.parametrize("stale", ["dead owner", "no answer"])
def test_a_stale_record_is_not_trusted(serve_lock: Path, answering: str, stale: str) -> None:
    """The lock is held but the record is stale: wait for the holder, then one clear line."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    if stale == "dead owner":
        record(serve_lock, answering, int(gone.stdout))
    else:
        record(serve_lock, "http://127.0.0.1:9/api", os.getpid())
    notes: list[str] = []
    settings = home_settings(serve_lock.parent, prefect_start_timeout=0.5)
    with (
        pytest.raises(PrefectServerError, match=rf"another office command \(pid {os.getpid()}\)"),
        home_server(settings, serving=False, progress=notes.append),
    ):
        pass
    assert notes == [f"waiting for office (pid {os.getpid()}) to finish with Prefect…"]


def test_a_taken_port_is_one_line_naming_it_and_the_option(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_taken("127.0.0.1", port)
        with (
            pytest.raises(
                PrefectServerError, match=rf"^port {port} on 127.0.0.1 is taken.*--prefect-port$"
            ),
            home_server(home_settings(tmp_path / "home"), serving=True, port=port),
        ):
            pass
    # Nothing is held after the refusal: the next command may take the home's server.
    descriptor = os.open(tmp_path / "home" / "prefect" / "server.lock", os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(descriptor)


def test_sigterm_while_waiting_is_ctrl_c_and_the_handler_comes_back(serve_lock: Path) -> None:
    """SIGTERM is handled as Ctrl-C, so every `finally` on the way out runs."""
    before = signal.getsignal(signal.SIGTERM)
    notes: list[str] = []

    def terminate_once_waiting(message: str) -> None:
        notes.append(message)
        os.kill(os.getpid(), signal.SIGTERM)

    with (
        pytest.raises(KeyboardInterrupt),
        home_server(
            home_settings(serve_lock.parent), serving=False, progress=terminate_once_waiting
        ),
    ):
        pass
    assert notes[0].startswith("waiting for office")
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_server_that_goes_away_is_reported_with_its_log(tmp_path: Path) -> None:
    """`office serve` watches its Prefect server and ends with this line when it dies."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    log = tmp_path / "server.log"
    server = PrefectServer("http://127.0.0.1:9/api", "http://127.0.0.1:9", True, log, process)
    assert server.gone() is None
    process.kill()
    process.wait()
    with pytest.raises(PrefectServerError) as caught:
        asyncio.run(watch_prefect(server))
    assert str(caught.value) == (
        f"the Prefect server stopped (exit status -9); read {log}, then start again"
    )


@pytest.mark.slow
def test_a_command_server_keeps_its_state_in_the_home_and_stops_with_the_block(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    pidfile = tmp_path / "server.pid"
    wrapper = f"{sys.executable} {SLOW_START} {pidfile} 0"
    settings = home_settings(home, prefect_server_wrapper=wrapper)
    notes: list[str] = []
    with home_server(settings, serving=False, progress=notes.append) as server:
        pid = int(pidfile.read_text())
        assert server.started
        answer = httpx.get(f"{server.api_url}/health", trust_env=False, timeout=60)
        assert answer.json() is True
        page = httpx.get(server.ui_url, trust_env=False, timeout=60)
        assert "<html" in page.text.lower()  # the UI is on
        assert (home / "prefect" / "prefect.db").is_file()
        state = httpx.get(f"{server.api_url}/admin/settings", trust_env=False, timeout=60).json()
        assert state["home"] == str((home / "prefect").resolve())
        assert state["server"]["services"]["scheduler"]["enabled"] is False
        assert state["server"]["analytics_enabled"] is False
        assert not (home / "prefect" / "server.json").exists()  # only `office serve` records
        assert pid in in_group(pid)
    assert wait_for(lambda: not in_group(pid), within=30)
    assert notes[0].startswith(f"starting Prefect on {server.ui_url} (its log: ")
    assert "prefect server start" in (home / "prefect" / "server.log").read_text()


@pytest.mark.slow
def test_sigkill_of_the_owner_leaves_no_prefect_process(tmp_path: Path) -> None:
    """Linux kills the server with its owner (PR_SET_PDEATHSIG); nothing of its group stays."""
    home = tmp_path / "home"
    pidfile = tmp_path / "server.pid"
    owner_code = (
        "import time\n"
        "from app.prefect_server import home_server\n"
        "from office.settings import load_settings\n"
        "with home_server(load_settings(), serving=False) as server:\n"
        "    print(server.api_url, flush=True)\n"
        "    time.sleep(3600)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "PREFECT_"))}
    env |= {
        "OFFICE_HOME": str(home),
        "OFFICE_PREFECT_SERVER_WRAPPER": f"{sys.executable} {SLOW_START} {pidfile} 0",
    }
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        api_url = owner.stdout.readline().strip()
        assert api_url.endswith("/api"), "the owner never reported its server"
        server = int(pidfile.read_text())
        assert alive(server)
        assert os.getpgid(server) == server  # its own group: the terminal's Ctrl-C is ours
    finally:
        owner.kill()
        owner.wait()
    assert wait_for(lambda: not in_group(server), within=30)
