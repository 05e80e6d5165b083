"""Project-wide fixtures: databases on SQLite always and PostgreSQL when configured,
and one Prefect test harness for the whole session (never nest a second one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker
from office.migrate import upgrade
from office.settings import Settings

PG_URL = os.environ.get("OFFICE_TEST_DATABASE_URL")

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
        secret_key="test-link-secret",  # type: ignore[arg-type]
        webhook_secret="test-webhook-secret",  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
