"""What a flow process needs from officeflows, built once per process at first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker
from office.settings import Settings, load_settings

__all__ = ["Office", "office", "use_office"]


@dataclass(frozen=True)
class Office:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]


_override: Office | None = None


@cache
def _from_environment() -> Office:
    settings = load_settings()
    engine = make_engine(settings.db_url)
    return Office(settings, engine, make_sessionmaker(engine))


def office() -> Office:
    """Settings and database for this process (the one `use_office` installed, if any)."""
    return _override if _override is not None else _from_environment()


def use_office(settings: Settings, engine: Engine | None = None) -> Office:
    """Run this process's flows against the given settings (the CLI, the demo, tests)."""
    global _override
    bound = engine or make_engine(settings.db_url)
    _override = Office(settings, bound, make_sessionmaker(bound))
    return _override
