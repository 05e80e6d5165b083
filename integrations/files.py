"""Durable file writes for the file transports (the demo's mail and SMS outboxes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: a reader sees the old file or the new, never half.

    The bytes go to a hidden ``.tmp-*`` file in the same directory, are fsynced,
    then renamed over `path`; a killed writer leaves only that hidden file, which
    readers of the outbox skip.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
