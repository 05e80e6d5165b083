"""The cyclic garbage collector held off while a file's rows are applied.

Applying 10,000 rows makes millions of short-lived objects; each batch of rows lives long
enough to reach the collector's oldest generation, and every full collection then walks
the whole process (SQLAlchemy, Prefect, the rows): a fifth of a records import's CPU went
there. The rows' objects are freed by their reference counts when a batch is written;
what is left in cycles (SQLAlchemy's statements with their parameter lists, about one
small tuple a row) waits for the collector, which is turned back on when the import
ends. Process-wide and counted: two imports in two threads leave it off until the last
one ends, and a collector someone else turned off stays off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the block runs (reference counting goes on)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
