"""What a flow process needs from officeflows, built once per process at first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker
from office.settings import Settings, load_settings

__all__ = ["Office", "TaskFailed", "office", "use_office", "withhold_row_data"]


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


_OURS = frozenset({"office", "integrations", "flows"})


class TaskFailed(RuntimeError):
    """A task failed with an error that may quote a row; only its type and place are kept."""


@contextmanager
def withhold_row_data(*own: type[BaseException]) -> Iterator[None]:
    """Let our errors through; any other leaves with its type and traceback, not its text.

    What escapes a task lands in Prefect's state message and logs. Our errors (classes
    defined in officeflows, and `own`) carry codes and ids, as their contracts say; a
    library's or a builtin's may quote the values it refused: SQL parameters, a calendar
    line, a header. The frames stay for whoever debugs it; the message and the chained
    exceptions do not.
    """
    try:
        yield
    except own:
        raise
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] in _OURS:
            raise
        withheld = TaskFailed(f"{type(exc).__name__} (its message is withheld: it may quote a row)")
        raise withheld.with_traceback(exc.__traceback__) from None
