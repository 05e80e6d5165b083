"""Project-wide fixtures: databases on SQLite always and PostgreSQL when configured,
one Prefect test harness for the whole session (never nest a second one), and the
conditions that keep property tests deterministic (Hypothesis profile, per-thread random)."""

from __future__ import annotations

import os
import random
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker
from office.migrate import upgrade
from office.settings import Settings

PG_URL = os.environ.get("OFFICE_TEST_DATABASE_URL")

# The same examples on every run and every machine, whatever the load: no example database
# carried between runs, no deadline and no too-slow health check (both measure wall time).
# HYPOTHESIS_PROFILE=explore draws fresh examples and keeps failures, for hunting bugs.
hypothesis_settings.register_profile(
    "officeflows",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "explore", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=1000
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "officeflows"))

_GLOBAL_RANDOM: random.Random = random.random.__self__  # type: ignore[attr-defined]
_STATE_FUNCTIONS = frozenset({"seed", "getstate", "setstate"})
_thread_random = threading.local()


def _generator() -> random.Random:
    """The global generator on the main thread; a thread's own generator everywhere else."""
    if threading.current_thread() is threading.main_thread():
        return _GLOBAL_RANDOM
    own: random.Random | None = getattr(_thread_random, "generator", None)
    if own is None:
        own = _thread_random.generator = random.Random()
    return own


def _per_thread(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_generator(), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the temporary Prefect API servers the tests' flow runs started, while pytest
    still has somewhere to write: left to Prefect's exit hook, each logs "Stopping
    temporary server" to the closed capture and Python prints "--- Logging error ---"."""
    server = sys.modules.get("prefect.server.api.server")
    if server is None:
        return
    for instance in list(server.SubprocessASGIServer._instances.values()):
        instance.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Keep other tests' threads off the global `random` state the property tests watch.

    Hypothesis fails a draw when the global `random` state changes during it ("Do not use
    the random module inside strategies", then FlakyStrategyDefinition on replay). Threads
    that outlive their test share that state: the Prefect events client pings its websocket
    from its event-loop thread, and each ping calls `random.getrandbits`. So for the test
    session, `random.*` calls on any thread but the main one (where tests and Hypothesis
    run) use a generator of that thread's own.
    """
    for name in random.__all__:
        function = getattr(random, name)
        if getattr(function, "__self__", None) is _GLOBAL_RANDOM and name not in _STATE_FUNCTIONS:
            setattr(random, name, _per_thread(name))


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="OFFICE_TEST_DATABASE_URL is not set"),
        ],
    ),
]


def fresh_database_url(backend: str, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the PostgreSQL test database wiped."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'office-{uuid.uuid4().hex[:8]}.db'}"
    assert PG_URL is not None
    url = Settings(database_url=PG_URL).db_url
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    return fresh_database_url(backend, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    bound = make_engine(db_url)
    upgrade(bound)
    yield bound
    bound.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=db_url,
        secret_key="test-link-secret-32-bytes-or-longer",  # type: ignore[arg-type]
        webhook_secret="test-webhook-secret-32-bytes-or-longer",  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
