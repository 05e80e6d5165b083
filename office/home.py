"""OFFICE_HOME's files, private from their first byte: directories 0700, files 0600.

The home holds what must not be read by other local users: the SQLite database (patients),
the file outboxes (messages), the generated secrets. A file chmod-ed after it is written was
readable in between, and a directory made under the usual umask (0755) lets anyone list it;
so directories are made 0700 and files opened 0600, whatever the umask. Directories and
files that already exist are left as they are: their owner chose.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "create_private_file",
    "make_private_dir",
    "write_private",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> Path:
    """Create `path` and every missing parent as 0700; returns `path`."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
    return path


def create_private_file(path: Path) -> None:
    """Create `path` empty as 0600 unless it exists (SQLite gives its -wal and -shm its mode)."""
    make_private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once, as a 0600 file: a reader sees old or new, never half.

    The bytes go to a hidden ``.tmp-*`` file in the same directory (mkstemp: 0600 from the
    start), are fsynced, then renamed over `path`; a killed writer leaves only that hidden
    file, which readers of an outbox skip.
    """
    make_private_dir(path.parent)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
