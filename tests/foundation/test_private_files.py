"""Everything officeflows creates under OFFICE_HOME is private from its first byte.

Run under the most permissive umask (000), so any mode the code did not ask for shows, and
with chmod refused, so a file made wide and narrowed afterwards (readable in between) fails.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.files import write_atomically
from office.db import make_engine
from office.home import make_private_dir
from office.migrate import upgrade
from office.settings import Settings, ensure_secrets


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was chmod-ed after it was created")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(os, "fchmod", refuse)


@pytest.mark.usefixtures("open_umask", "no_chmod")
def test_generated_secrets_and_their_folders_are_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "practice" / "home")
    ensure_secrets(settings)
    assert mode(tmp_path / "practice") == mode(settings.home) == 0o700
    assert mode(settings.home / "secrets.env") == 0o600
    assert settings.secret_key is not None


@pytest.mark.usefixtures("open_umask")
def test_the_sqlite_database_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "data"
    engine = make_engine(f"sqlite:///{folder / 'office.db'}")
    try:
        upgrade(engine)  # writes, so the pooled connection holds the -wal and -shm open
        files = sorted(path.name for path in folder.iterdir())
        assert files == ["office.db", "office.db-shm", "office.db-wal"]
        assert {name: mode(folder / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        engine.dispose()
    assert mode(tmp_path / "home") == mode(folder) == 0o700


@pytest.mark.usefixtures("open_umask", "no_chmod")
def test_outbox_files_and_folders_are_private(tmp_path: Path) -> None:
    target = tmp_path / "home" / "outbox" / "email" / "1.eml"
    write_atomically(target, b"Subject: reminder\r\n\r\n")
    write_atomically(target, b"Subject: again\r\n\r\n")
    assert [mode(p) for p in (tmp_path / "home", target.parent.parent, target.parent)] == [
        0o700
    ] * 3
    assert mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["1.eml"]


@pytest.mark.usefixtures("open_umask")
def test_folders_already_there_are_left_as_their_owner_made_them(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    make_private_dir(shared / "home")
    assert (mode(shared), mode(shared / "home")) == (0o755, 0o700)
