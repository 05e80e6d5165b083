"""OFFICE_PREFECT_SERVER_WRAPPER for tests: record this pid, wait, then become the server.

`python slow_start.py PIDFILE SECONDS COMMAND...` sleeps SECONDS and then execs COMMAND
(`prefect server start …`) in this same process, so the pid, the process group and the
parent-death signal the server was given all carry over. SECONDS `never` never starts it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

pidfile, seconds, *command = sys.argv[1:]
Path(pidfile).write_text(str(os.getpid()))
if seconds == "never":
    while True:
        time.sleep(3600)
time.sleep(float(seconds))
os.execv(command[0], command)  # noqa: S606 - the server command, as given
