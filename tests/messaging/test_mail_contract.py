"""Every Mailer (file, smtp) passes the same contract; then what is particular to FileMailer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from integrations.mail import FileMailer, SmtpMailer, get_mailer
from office.contracts.mail import Mailer, MailRetryableError
from office.messages import build_email, message_id_for

from .conftest import Recorder, ServeFn

pytestmark = pytest.mark.anyio

Delivered = Callable[[], list[bytes]]
OpenMailer = Callable[[], AbstractAsyncContextManager[tuple[Mailer, Delivered]]]


def make_message(key: str, text: str = "See you soon.") -> EmailMessage:
    return build_email(
        message_id=message_id_for(key, "clinic.example"),
        sender="reminders@clinic.example",
        to="patient@patients.example",
        subject="Your appointment",
        text=text,
        html="<p>See you soon.</p>",
        ics=None,
        method=None,
    )


def entries(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


@pytest.fixture(params=["file", "smtp"])
def mailer_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_mailer(mailer_kind: str, serve: ServeFn, tmp_path: Path) -> OpenMailer:
    """A mailer built by `get_mailer`, and a way to read what it delivered."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[tuple[Mailer, Delivered]]:
        if mailer_kind == "file":
            yield (
                get_mailer("file", outbox_dir=tmp_path),
                lambda: [path.read_bytes() for path in sorted(tmp_path.glob("*.eml"))],
            )
            return
        handler = Recorder()
        async with serve(handler) as server:
            mailer = get_mailer("smtp", host="127.0.0.1", port=server.port)
            yield mailer, lambda: [item.content for item in handler.messages]

    return opened


async def test_contract_send_returns_the_message_id_and_delivers_the_bytes(
    open_mailer: OpenMailer,
) -> None:
    message = make_message("contract-1", text="Línea con acento.")
    async with open_mailer() as (mailer, delivered):
        assert isinstance(mailer, Mailer)
        async with mailer:
            returned = await mailer.send(message)
        raw = delivered()
    assert returned == message["Message-ID"]
    assert len(raw) == 1
    parsed = BytesParser(policy=policy.default).parsebytes(raw[0])
    assert parsed["Message-ID"] == returned
    body = parsed.get_body(("plain",))
    assert body is not None
    assert "Línea con acento." in body.get_content()


async def test_contract_refuses_a_message_without_message_id(
    open_mailer: OpenMailer,
) -> None:
    message = make_message("contract-2")
    del message["Message-ID"]
    async with open_mailer() as (mailer, delivered):
        async with mailer:
            with pytest.raises(ValueError, match="Message-ID"):
                await mailer.send(message)
        assert delivered() == []


async def test_contract_refuses_a_message_without_recipient(
    open_mailer: OpenMailer,
) -> None:
    message = make_message("contract-3")
    del message["To"]
    async with open_mailer() as (mailer, delivered):
        async with mailer:
            with pytest.raises(ValueError, match="recipient"):
                await mailer.send(message)
        assert delivered() == []


async def test_file_mailer_overwrites_the_same_message_id(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path)
    first = make_message("same-key", text="first version")
    second = make_message("same-key", text="second version")
    async with mailer:
        await mailer.send(first)
        returned = await mailer.send(second)

    files = entries(tmp_path)
    assert files == [mailer.path_for(returned)]
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    body = parsed.get_body(("plain",))
    assert body is not None
    assert "second version" in body.get_content()


async def test_file_mailer_names_files_safely_and_leaves_no_temp_files(tmp_path: Path) -> None:
    message = make_message("unsafe")
    message.replace_header("Message-ID", "<../../etc/passwd@clinic.example>")
    mailer = FileMailer(tmp_path / "outbox")
    async with mailer:
        await mailer.send(message)
    written = list((tmp_path / "outbox").iterdir())
    assert [path.name for path in written] == [".._.._etc_passwd@clinic.example.eml"]
    assert written[0].parent == tmp_path / "outbox"


async def test_file_mailer_translates_os_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox should be")
    mailer = FileMailer(blocker)
    async with mailer:
        with pytest.raises(MailRetryableError) as caught:
            await mailer.send(make_message("blocked"))
    assert isinstance(caught.value.__cause__, OSError)


def test_get_mailer_builds_each_kind(tmp_path: Path) -> None:
    assert isinstance(get_mailer("file", outbox_dir=tmp_path), FileMailer)
    smtp = get_mailer("smtp", host="mail.example", tls="starttls")
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.port, smtp.tls) == (587, "starttls")
    assert get_mailer("smtp", host="mail.example", tls="tls").port == 465  # type: ignore[attr-defined]
    assert get_mailer("smtp", host="mail.example").port == 25  # type: ignore[attr-defined]


def test_get_mailer_fails_fast_on_missing_settings() -> None:
    with pytest.raises(ValueError, match="outbox_dir"):
        get_mailer("file")
    with pytest.raises(ValueError, match="host"):
        get_mailer("smtp")
    with pytest.raises(ValueError, match="unknown mailer"):
        get_mailer("carrier-pigeon")  # type: ignore[arg-type]


def test_mailer_from_settings_follows_the_office_settings(tmp_path: Path) -> None:
    from integrations.mail import mailer_from_settings
    from office.settings import Settings

    settings = Settings(home=tmp_path, mail_from="desk@clinic.example")
    filed = mailer_from_settings(settings)
    assert isinstance(filed, FileMailer)
    assert filed.directory == settings.outbox_dir
    smtp = mailer_from_settings(
        settings.model_copy(update={"mailer": "smtp", "smtp_host": "127.0.0.1", "smtp_port": 2525})
    )
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.host, smtp.port, smtp.tls) == ("127.0.0.1", 2525, "none")
    assert smtp.sender_domain == "clinic.example"
