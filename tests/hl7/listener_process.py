"""The MLLP listener alone in a process, for the test that kills it:
`python -m tests.hl7.listener_process DB_URL PORT READY_FILE`.

Once it listens it writes the port to READY_FILE (atomically); it runs until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from integrations.hl7 import serve_mllp
from office.db import make_engine, make_sessionmaker
from office.settings import Settings


def main(db_url: str, port: int, ready_file: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="officeflows-mllp-"))
    settings = Settings(home=home, database_url=db_url, mllp_host="127.0.0.1", mllp_port=port)
    engine = make_engine(settings.db_url)

    def ready(_host: str, bound: int) -> None:
        partial = ready_file.with_suffix(".partial")
        partial.write_text(str(bound))
        os.replace(partial, ready_file)

    asyncio.run(serve_mllp(settings, make_sessionmaker(engine), None, ready=ready))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
