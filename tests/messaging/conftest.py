"""Loopback fakes for the far side: a real aiosmtpd server, a self-signed certificate, contexts."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import SMTP as SmtpServerProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from office.models import AppointmentStatus, Channel
from office.reminders import Contact, Draft, Facts, Visit


@pytest.fixture
def anyio_backend() -> str:
    """aiosmtplib and aiosmtpd are asyncio libraries."""
    return "asyncio"


@dataclass
class Received:
    """One message as the server took it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    connection: int
    tls: bool
    authenticated: bool


@dataclass
class Recorder:
    """aiosmtpd handler that records messages and misbehaves on request.

    Args:
        mail_reply: Reply to MAIL FROM instead of accepting.
        rcpt_reply: Reply to every RCPT TO instead of accepting.
        data_reply: Reply after the body instead of accepting.
        hang_after_body: Never answer after the body (until the test ends).
        drop_after: Close a connection at its next MAIL once it delivered this many.
        closing_after: Answer 421 at the next MAIL once a connection delivered this many.
    """

    mail_reply: str | None = None
    rcpt_reply: str | None = None
    data_reply: str | None = None
    hang_after_body: bool = False
    drop_after: int | None = None
    closing_after: int | None = None
    messages: list[Received] = field(default_factory=list)
    bodies_seen: int = 0
    per_connection: dict[int, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_MAIL(
        self,
        server: SmtpServerProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        delivered = self.per_connection.get(id(server), 0)
        if self.drop_after is not None and delivered >= self.drop_after:
            assert server.transport is not None
            server.transport.close()
            return "421 gone"
        if self.closing_after is not None and delivered >= self.closing_after:
            return "421 4.3.2 Service shutting down"
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SmtpServerProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SmtpServerProtocol, session: Session, envelope: Envelope
    ) -> str:
        self.bodies_seen += 1
        if self.hang_after_body:
            await self.release.wait()
            return "451 too late"
        if self.data_reply is not None:
            return self.data_reply
        content = envelope.original_content or b""
        implicit_tls = (
            server.transport is not None
            and server.transport.get_extra_info("sslcontext") is not None
        )
        self.messages.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                connection=id(server),
                tls=session.ssl is not None or implicit_tls,
                authenticated=bool(session.authenticated),
            )
        )
        self.per_connection[id(server)] = self.per_connection.get(id(server), 0) + 1
        return "250 2.0.0 Message accepted"


@dataclass
class RunningServer:
    """The port to dial and one protocol object per accepted connection."""

    port: int
    protocols: list[SmtpServerProtocol]

    @property
    def connections(self) -> int:
        return len(self.protocols)

    def drop_all(self) -> None:
        """Close every connection from the server side, as an idle timeout would."""
        for protocol in self.protocols:
            if protocol.transport is not None:
                protocol.transport.close()


ServeFn = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def serve() -> ServeFn:
    """Start an aiosmtpd server on 127.0.0.1, port chosen by the OS, for one `async with`."""

    @asynccontextmanager
    async def _serve(
        handler: Recorder,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> AsyncIterator[RunningServer]:
        loop = asyncio.get_running_loop()
        protocols: list[SmtpServerProtocol] = []

        def authenticator(
            server: SmtpServerProtocol,
            session: Session,
            envelope: Envelope,
            mechanism: str,
            auth_data: Any,
        ) -> AuthResult:
            ok = (
                credentials is not None
                and isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == credentials
            )
            # handled=False: aiosmtpd, not this callback, answers 535 on failure.
            return AuthResult(success=ok, handled=False)

        def factory() -> SmtpServerProtocol:
            protocol = SmtpServerProtocol(
                handler,
                hostname="localhost",
                tls_context=starttls,
                require_starttls=starttls is not None,
                authenticator=authenticator if credentials is not None else None,
                auth_required=credentials is not None,
                auth_require_tls=True,
                loop=loop,
            )
            protocols.append(protocol)
            return protocol

        server = await loop.create_server(factory, host="127.0.0.1", port=0, ssl=implicit_tls)
        port = server.sockets[0].getsockname()[1]
        try:
            yield RunningServer(port=port, protocols=protocols)
        finally:
            handler.release.set()
            server.close()
            for protocol in protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            await server.wait_closed()

    return _serve


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and the contexts that serve and trust it."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """Generated with `cryptography`, so TLS is tested without any network or openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "officeflows test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_path=cert_path, key_path=key_path)


@pytest.fixture
def reminder_context() -> Callable[..., dict[str, object]]:
    """Realistic worst-case values: a 40-character practice name and 41-character links."""

    def build(language: str = "en", **overrides: object) -> dict[str, object]:
        zone = ZoneInfo("America/New_York")
        context: dict[str, object] = {
            "practice_name": "Riverside Family Medicine and Pediatrics",
            "location_name": "Riverside Main Street Clinic",
            "location_address": "1200 Main Street, Suite 300, Springfield, IL 62701",
            "location_phone": "(555) 555-0123",
            "patient_first_name": "María",
            # A Wednesday: the longest English weekday.
            "when_local": dt.datetime(2025, 3, 12, 10, 30, tzinfo=zone),
            "tz_abbrev": "EDT",
            "visit_label": "appointment" if language == "en" else "cita",
            "confirm_url": "https://rfmp.example/r/Q2hD9xKp3LmN7vT1aB",
            "cancel_url": "https://rfmp.example/x/Q2hD9xKp3LmN7vT1aB",
            "reschedule_url": "https://rfmp.example/m/Q2hD9xKp3LmN7vT1aB",
            "bring_insurance_card": True,
            "language": language,
            "old_when_local": dt.datetime(2025, 3, 8, 9, 0, tzinfo=zone),
        }
        context.update(overrides)
        return context

    return build


@pytest.fixture
def draft() -> Callable[..., Draft]:
    """One outbox row's message as the send loop composes it, with the same worst-case values."""

    def build(kind: str = "reminder", language: str = "en", **visit: Any) -> Draft:
        zone = ZoneInfo("America/New_York")
        # A Wednesday, 10:30 in New York: the longest English weekday.
        start = dt.datetime(2025, 3, 12, 10, 30, tzinfo=zone).astimezone(dt.UTC)
        contact = Contact(
            email="maria@example.test",
            phone="+15555550123",
            consented=frozenset({Channel.EMAIL, Channel.SMS}),
        )
        facts = Facts(
            appointment_id=7,
            start=start,
            status=AppointmentStatus.BOOKED,
            scheduled_at=start - dt.timedelta(days=20),
            zone=zone,
            offsets=(),
            stop_on_confirm=True,
            contact=contact,
        )
        fields: dict[str, Any] = {
            "appointment_id": 7,
            "version": 2,
            "start": start,
            "end": start + dt.timedelta(minutes=30),
            "status": AppointmentStatus.BOOKED,
            "patient_id": 3,
            "first_name": "María",
            "language": language,
            "practice_id": 1,
            "practice_name": "Riverside Family Medicine and Pediatrics",
            "mail_domain": "rfmp.example",
            "location_name": "Riverside Main Street Clinic",
            "location_address": "1200 Main Street, Suite 300, Springfield, IL 62701",
            "location_phone": "(555) 555-0123",
            "location_zone": "America/New_York",
            "type_id": 2,
            "type_name": "Follow-up visit",
            "sensitive": False,
            "send_confirmation": True,
            "send_change_notices": True,
            "bring_card": True,
            "previous_start": None,
            "facts": facts,
        }
        fields.update(visit)
        old_start = int((start - dt.timedelta(days=4)).timestamp())
        return Draft(
            item_id=1,
            key=f"appt:7:v2:{kind}:24h:email",
            kind=kind,
            detail={"offset": "24h", "version": 2, "language": language, "old_start": old_start},
            created_at=start - dt.timedelta(days=1),
            recipient="maria@example.test",
            visit=Visit(**fields),
        )

    return build
