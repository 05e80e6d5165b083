"""A real Dovecot IMAP server on loopback with a throwaway configuration, for tests and benchmarks.

Everything lives under one directory: the configuration, its own base_dir and
state, a passwd-file user, Maildir mail, and a self-signed certificate made with
`cryptography` for 127.0.0.1 (clients trust it through the CA file the mailbox
settings name). It listens on two free loopback ports: IMAPS, and IMAP with
STARTTLS (plaintext login is refused). Debian's `dovecot-imapd` provides the
binary; `.ci/run` installs it when missing.

    with dovecot_server(tmp_path) as server:
        server.append(raw_bytes)
        box = server.mailbox_settings("front-desk")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient

from office.contracts.mailbox import MailboxSettings

__all__ = ["DovecotServer", "dovecot_available", "dovecot_server"]

USER = "office"
PASSWORD = "throwaway-imap-password"  # noqa: S105 - a test server's, on loopback only


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None


@dataclass
class DovecotServer:
    """A running Dovecot: its ports, its CA file, and how to restart or stop it."""

    root: Path
    imaps_port: int
    imap_port: int
    ca_file: Path
    process: subprocess.Popen[bytes] | None = None

    def mailbox_settings(self, name: str, **overrides: object) -> MailboxSettings:
        """Settings for an `imap` mailbox on this server (IMAPS unless overridden)."""
        values: dict[str, object] = {
            "name": name,
            "address": f"{name}@riverbend.test",
            "kind": "imap",
            "host": "127.0.0.1",
            "port": self.imaps_port,
            "security": "tls",
            "ca_file": self.ca_file,
            "username": USER,
            "password": PASSWORD,
            "timeout": 20.0,
        }
        values.update(overrides)
        return MailboxSettings.model_validate(values)

    def client(self) -> IMAPClient:
        """A logged-in imapclient connection (for tests that append or inspect)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = IMAPClient(
            "127.0.0.1", port=self.imaps_port, ssl=True, ssl_context=context, timeout=20
        )
        client.login(USER, PASSWORD)
        return client

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            for raw in messages:
                client.append(folder, raw)
        finally:
            client.logout()

    def count(self, folder: str = "INBOX") -> int:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return 0
            client.select_folder(folder, readonly=True)
            return len(client.search(["ALL"]))
        finally:
            client.logout()

    def message_ids(self, folder: str = "INBOX") -> list[str]:
        """The Message-ID of every message in a folder, in UID order."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search(["ALL"]))
            data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            found = []
            for uid in uids:
                value = data[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode()
                found.append(value.partition(":")[2].strip())
            return found
        finally:
            client.logout()

    def start(self, startup_timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends every child too
        )
        deadline = time.monotonic() + startup_timeout
        while not _listening(self.imaps_port) or not _listening(self.imap_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.root / "dovecot.log"
                detail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"dovecot did not start: {detail}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # The master's children (imap sessions, auth, log) outlive it unless told: the group goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (_listening(self.imaps_port) or _listening(self.imap_port)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def dovecot_server(directory: Path | None = None) -> Iterator[DovecotServer]:
    """Configure and start Dovecot under a new directory; stopped and removed when the block ends.

    Dovecot's own processes run as its users (`dovecot`, `nobody`), which cannot
    enter pytest's private temporary folders: the directory is made under the
    system's temporary folder (or `directory`), open for them to traverse.
    """
    root = Path(tempfile.mkdtemp(prefix="officeflows-dovecot-", dir=directory))
    root.chmod(0o755)
    try:
        yield from _serve(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(root: Path) -> Iterator[DovecotServer]:
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).chmod(0o755)
    cert, key = _certificate(root)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    uid, gid = _mail_user()
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    imaps_port, imap_port = _free_port(), _free_port()
    (root / "dovecot.conf").write_text(
        _CONFIG.format(
            root=root,
            cert=cert,
            key=key,
            imaps=imaps_port,
            imap=imap_port,
            uid=uid,
            gid=gid,
        )
    )
    server = DovecotServer(root, imaps_port, imap_port, cert)
    server.start()
    try:
        yield server
    finally:
        server.stop()


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = officeflows-test-{imaps}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def _certificate(root: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
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
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _mail_user() -> tuple[int, int]:
    """Dovecot refuses to keep mail as root: as root, it is kept as `nobody`."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
