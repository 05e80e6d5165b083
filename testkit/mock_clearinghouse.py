"""A loopback clearinghouse for benchmarks and tests: answers 270 POSTs with 271s, a bit later.

    python testkit/mock_clearinghouse.py --port 0 --latency-ms 200 --fault-rate 0.0

It takes a raw X12 body or a CAQH CORE 2.2.0 multipart envelope and answers in kind.
Answers come from the real codec (parse_270, then build_271 with the sandbox payer's
deterministic scenario for the member). The wait is an ``asyncio.sleep``, so hundreds of
concurrent requests each take the latency once instead of queueing behind each other.

Once the socket accepts connections it prints one line, ``listening http://HOST:PORT``;
`running()` starts it as a subprocess, waits for that line and stops it afterwards.
Faults (``--fault-rate``) answer 503 with Retry-After, or a 271 with payer-level AAA 42.
``GET /stats`` answers ``{"requests": N, "in_flight": N, "max_in_flight": N}``: inquiries
answered and in progress, and the most ever in progress at once, so a test can check that
every asker together kept within a payer's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import selectors
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

FAULT_KINDS = ("mixed", "503", "aaa42")


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    fields: dict[str, str] = {}
    if not message.is_multipart():
        return fields
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name, payload.decode("utf-8", errors="replace"))
    return fields


def _multipart(fields: dict[str, str]) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"
    return f"multipart/form-data; boundary={boundary}", body.encode("utf-8")


def build_app(
    *,
    latency_ms: float = 200.0,
    fault_rate: float = 0.0,
    fault_kind: str = "mixed",
    seed: int = 0,
    auth_header: str | None = None,
    auth_value: str | None = None,
) -> App:
    """The ASGI app; all per-request work is one small parse and one small build."""
    from integrations.payers.sandbox import SandboxProfile, choose_scenario
    from integrations.x12 import Scenario, X12Error, build_271, parse_270

    profile = SandboxProfile()
    faults = random.Random(seed)
    controls = itertools.count(1)
    wanted_auth = None
    if auth_header is not None and auth_value is not None:
        wanted_auth = (auth_header.lower().encode(), auth_value.encode())
    delay = latency_ms / 1000
    stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0}

    async def respond(
        send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[bytes, bytes]]
    ) -> None:
        headers = [(b"content-type", content_type.encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {key.lower(): value for key, value in scope["headers"]}
        if scope["method"] == "GET" and scope["path"] == "/stats":
            await respond(send, 200, json.dumps(stats).encode(), "application/json", [])
            return
        if scope["method"] != "POST":
            await respond(send, 405, b"POST a 270", "text/plain", [])
            return
        if wanted_auth is not None and headers.get(wanted_auth[0]) != wanted_auth[1]:
            await respond(send, 401, b"unauthorized", "text/plain", [])
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        core = content_type.lower().startswith("multipart/")
        envelope = _multipart_fields(content_type, body) if core else {}
        payload = envelope.get("Payload", "") if core else body.decode("utf-8", errors="replace")
        try:
            requests = parse_270(payload)
        except X12Error:
            requests = []
        if not requests:
            await respond(send, 400, b"not a readable 270", "text/plain", [])
            return
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            await _answer(send, requests[0], envelope, core)
        finally:
            stats["in_flight"] -= 1
            stats["requests"] += 1

    async def _answer(send: Send, request: Any, envelope: dict[str, str], core: bool) -> None:
        await asyncio.sleep(delay)
        scenario = choose_scenario(request, profile)
        if fault_rate and faults.random() < fault_rate:
            kind = fault_kind if fault_kind != "mixed" else faults.choice(("503", "aaa42"))
            if kind == "503":
                await respond(send, 503, b"busy", "text/plain", [(b"retry-after", b"1")])
                return
            scenario = Scenario(aaa=(("2100A", "42", "P"),))
        answer = build_271(request, interchange_control=next(controls), scenario=scenario)
        if not core:
            await respond(send, 200, answer.encode("utf-8"), "application/edi-x12", [])
            return
        content_type, data = _multipart(
            {
                "PayloadType": "X12_271_Response_005010X279A1",
                "ProcessingMode": "RealTime",
                "PayloadID": envelope.get("PayloadID", str(uuid.uuid4())),
                "TimeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "SenderID": envelope.get("ReceiverID", "MOCKCH"),
                "ReceiverID": envelope.get("SenderID", "OFFICEFLOWS"),
                "CORERuleVersion": "2.2.0",
                "ErrorCode": "Success",
                "ErrorMessage": "None",
                "Payload": answer,
            }
        )
        await respond(send, 200, data, content_type, [])

    return app


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kind", choices=FAULT_KINDS, default="mixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--auth-header", default=None)
    parser.add_argument("--auth-value", default=None)
    args = parser.parse_args(argv)
    if not 0.0 <= args.fault_rate <= 1.0 or args.latency_ms < 0:
        parser.error("--fault-rate must be 0..1 and --latency-ms not negative")
    if (args.auth_header is None) != (args.auth_value is None):
        parser.error("--auth-header and --auth-value go together")
    return args


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM."""
    import uvicorn

    args = _arguments(argv)
    app = build_app(
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        fault_kind=args.fault_kind,
        seed=args.seed,
        auth_header=args.auth_header,
        auth_value=args.auth_value,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it. uvicorn writes a response's head and body apart, and
    # asyncio leaves Nagle on for a socket handed in like this one: the body then waited
    # for the client's delayed ACK, 40 ms on every answer, as no real server would.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    # Bound and listening before the line is printed: early connections wait in the backlog.
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=2048,
    )
    print(f"listening http://{host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


@contextmanager
def running(
    *,
    latency_ms: float = 200.0,
    fault_rate: float = 0.0,
    fault_kind: str = "mixed",
    seed: int = 0,
    auth: tuple[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Start the server as a subprocess on a free loopback port; yield its base URL."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--latency-ms",
        str(latency_ms),
        "--fault-rate",
        str(fault_rate),
        "--fault-kind",
        fault_kind,
        "--seed",
        str(seed),
    ]
    if auth is not None:
        command += ["--auth-header", auth[0], "--auth-value", auth[1]]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield _await_listening(process, startup_timeout)
    finally:
        from testkit.processes import stop  # here: this file also runs as a script

        stop(process, timeout=15)
        if process.stdout is not None:
            process.stdout.close()


def _await_listening(process: subprocess.Popen[str], timeout: float) -> str:
    """The URL from the server's first line; the timeout only guards a hung start."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError("mock clearinghouse did not start")
    line = process.stdout.readline().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"mock clearinghouse failed to start (exit code {process.poll()})")
    return line.removeprefix("listening ")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
