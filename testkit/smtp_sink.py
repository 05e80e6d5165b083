"""A loopback SMTP server that counts Message-IDs and misbehaves on request.

Run as its own process so the benchmark and the fault tests measure a real
network hop, not a coroutine sharing the sender's event loop::

    python testkit/smtp_sink.py --port-file PORT --log LOG [--drop-every 300]

Every accepted message appends one line ``<Message-ID> TAB <client port>`` to LOG
(flushed at once), so a test can count deliveries while the sender is still running,
and after the sender was killed, and tell the connections they came over apart.
Faults, all counted over the server's lifetime:

- ``--drop-every N``: after every Nth accepted message, the connection that
  carried it is closed at its next MAIL command, without a reply.
- ``--reject-rcpt TEXT``: RCPT addresses containing TEXT get ``550 5.1.1``.
- ``--defer-mail K``: the first K MAIL commands get ``451 4.3.0``.
- ``--drop-after-data TEXT``: for recipients containing TEXT, the body is read
  and the connection closed before any reply (an ambiguous send), without
  logging the message.
- ``--hold-after N``: once N messages were accepted, every later MAIL command waits
  without a reply until the sink gets SIGUSR1: a sender stuck mid-batch, for as long as
  a test needs to kill it, with nothing of the held messages sent yet.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["Sink", "SinkHandler", "main", "start_sink"]

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class SinkHandler:
    """aiosmtpd handler: logs each accepted Message-ID and injects the requested faults."""

    def __init__(
        self,
        log: IO[str],
        *,
        drop_every: int | None = None,
        reject_rcpt: str | None = None,
        defer_mail: int = 0,
        drop_after_data: str | None = None,
        hold_after: int | None = None,
    ) -> None:
        self.log = log
        self.hold_after = hold_after
        self.released = asyncio.Event()
        self.drop_every = drop_every
        self.reject_rcpt = reject_rcpt
        self.defer_mail = defer_mail
        self.drop_after_data = drop_after_data
        self.accepted = 0
        self.mail_commands = 0
        self._doomed: set[int] = set()

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.mail_commands += 1
        if self.hold_after is not None and self.accepted >= self.hold_after:
            await self.released.wait()
        if id(server) in self._doomed:
            self._doomed.discard(id(server))
            _close(server)
            return "421 4.4.2 connection dropped"
        if self.mail_commands <= self.defer_mail:
            return "451 4.3.0 try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.reject_rcpt and self.reject_rcpt in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.drop_after_data and any(self.drop_after_data in r for r in envelope.rcpt_tos):
            _close(server)
            return "421 4.4.2 connection dropped"
        content = envelope.original_content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode("ascii", "replace") if found else "-"
        peer = session.peer[1] if isinstance(session.peer, tuple) else 0
        self.log.write(f"{message_id}\t{peer}\n")
        self.log.flush()
        self.accepted += 1
        if self.drop_every and self.accepted % self.drop_every == 0:
            self._doomed.add(id(server))
        return "250 2.0.0 accepted"


def _close(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


async def serve(args: argparse.Namespace, log: IO[str]) -> None:
    loop = asyncio.get_running_loop()
    # A line per message, flushed at once: tiny blocking writes a test server can afford.
    handler = SinkHandler(
        log,
        drop_every=args.drop_every,
        reject_rcpt=args.reject_rcpt,
        defer_mail=args.defer_mail,
        drop_after_data=args.drop_after_data,
        hold_after=args.hold_after,
    )

    def factory() -> SMTP:
        return SMTP(handler, hostname="sink.localhost", loop=loop, data_size_limit=10_000_000)

    server = await loop.create_server(factory, host="127.0.0.1", port=args.port)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, handler.released.set)
    # Written last and renamed into place: a reader that sees the file can connect.
    port_file = Path(args.port_file)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.replace(port_file)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--drop-every", type=int, default=None)
    parser.add_argument("--reject-rcpt", default=None)
    parser.add_argument("--defer-mail", type=int, default=0)
    parser.add_argument("--drop-after-data", default=None)
    parser.add_argument("--hold-after", type=int, default=None)
    args = parser.parse_args(argv)
    with open(args.log, "a", encoding="utf-8") as log:
        asyncio.run(serve(args, log))
    return 0


class Sink:
    """A sink running in a child process: its port, its log, and a way to stop it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    def ids(self) -> list[str]:
        """Every accepted Message-ID, in arrival order."""
        return [message_id for message_id, _ in self._lines()]

    def connections(self) -> set[int]:
        """The client ports messages were accepted from: one per connection."""
        return {int(port) for _, port in self._lines()}

    def _lines(self) -> list[tuple[str, str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [(line.partition("\t")[0], line.partition("\t")[2] or "0") for line in lines if line]

    def counts(self) -> Counter[str]:
        """Message-ID -> how many times the server accepted it."""
        return Counter(self.ids())

    def release(self) -> None:
        """Let MAIL commands held by ``--hold-after`` through, and every later one."""
        self.process.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        from testkit.processes import stop  # here: this file also runs as a script

        stop(self.process, timeout=30)


def start_sink(directory: Path, *options: str, startup_timeout: float = 30.0) -> Sink:
    """Start `smtp_sink.py` in a child process and wait until it listens.

    Args:
        directory: Where its port file and log go.
        options: Extra command-line options, e.g. ("--drop-every", "300").
    """
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "sink.port"
    log = directory / "sink.log"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, __file__, "--port-file", str(port_file), "--log", str(log), *options]
    )
    deadline = time.monotonic() + startup_timeout
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the SMTP sink did not start")
        time.sleep(0.02)
    return Sink(process, int(port_file.read_text()), log)


if __name__ == "__main__":
    sys.exit(main())
