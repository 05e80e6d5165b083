"""TwilioSms against a Twilio double behind httpx.MockTransport, FileSms, and their contract."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from integrations.sms import FileSms, TwilioSms, get_sms_sender
from office.contracts.sms import SmsAmbiguousError, SmsRejected, SmsRetryableError, SmsSender

pytestmark = pytest.mark.anyio

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tw-token"
PATIENT = "+15555550123"
BODY = "Riverside: appointment Wed Mar 12 10:30 AM EDT. Tel (555) 555-0100"


class TwilioDouble:
    """Answers Messages.json like Twilio, records what it was sent, or fails on request."""

    def __init__(self, status: int = 201, payload: object | None = None) -> None:
        self.status = status
        self.payload = payload
        self.requests: list[httpx.Request] = []
        self.raise_error: Exception | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raise_error is not None:
            raise self.raise_error
        payload = self.payload
        if payload is None:
            payload = {"sid": f"SM{len(self.requests):032d}", "status": "queued"}
        return httpx.Response(self.status, json=payload)

    def form(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(self.requests[index].content.decode())


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def twilio(double: TwilioDouble, **kwargs: object) -> TwilioSms:
    client = httpx.AsyncClient(transport=httpx.MockTransport(double))
    options: dict[str, object] = {"from_number": "+15555550100"}
    options.update(kwargs)
    return TwilioSms(SID, TOKEN, client=client, **options)  # type: ignore[arg-type]


async def test_posts_form_with_basic_auth_and_returns_sid() -> None:
    double = TwilioDouble()
    sid = await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-1")

    assert sid == f"SM{1:032d}"
    request = double.requests[0]
    assert request.method == "POST"
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert double.form() == {"To": [PATIENT], "Body": [BODY], "From": ["+15555550100"]}


async def test_messaging_service_replaces_from() -> None:
    double = TwilioDouble()
    sender = twilio(double, from_number=None, messaging_service_sid="MG0123")
    await sender.send(to=PATIENT, body=BODY, idempotency_key="outbox-2")
    assert double.form()["MessagingServiceSid"] == ["MG0123"]
    assert "From" not in double.form()


def test_exactly_one_sender_identity_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TwilioSms(SID, TOKEN)
    with pytest.raises(ValueError, match="exactly one"):
        TwilioSms(SID, TOKEN, from_number="+15555550100", messaging_service_sid="MG0123")


@pytest.mark.parametrize(
    ("code", "opted_out"),
    [(21610, True), (21211, False), (21614, False)],
)
async def test_twilio_4xx_is_rejected_with_code_and_no_phi(code: int, opted_out: bool) -> None:
    message = f"The 'To' number {PATIENT} is not a valid phone number."
    double = TwilioDouble(status=400, payload={"code": code, "message": message, "status": 400})
    with pytest.raises(SmsRejected) as caught:
        await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-3")
    assert caught.value.error_code == code
    assert caught.value.http_status == 400
    assert caught.value.opted_out is opted_out
    assert PATIENT not in str(caught.value)
    assert BODY not in str(caught.value)
    assert SID not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_retryable(status: int) -> None:
    double = TwilioDouble(status=status, payload={"code": 20429, "message": "Too Many Requests"})
    with pytest.raises(SmsRetryableError) as caught:
        await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-4")
    assert caught.value.http_status == status


async def test_connect_error_is_retryable() -> None:
    double = TwilioDouble()
    double.raise_error = httpx.ConnectError("connection refused")
    with pytest.raises(SmsRetryableError) as caught:
        await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-5")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
async def test_no_answer_after_sending_is_ambiguous(error: Exception) -> None:
    double = TwilioDouble()
    double.raise_error = error
    with pytest.raises(SmsAmbiguousError):
        await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-6")


@pytest.mark.parametrize("payload", [{"status": "queued"}, {"sid": ""}, ["not", "a", "dict"]])
async def test_success_without_sid_is_ambiguous(payload: object) -> None:
    double = TwilioDouble(status=201, payload=payload)
    with pytest.raises(SmsAmbiguousError):
        await twilio(double).send(to=PATIENT, body=BODY, idempotency_key="outbox-7")


async def test_without_injected_client_each_send_opens_its_own() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = TwilioSms(
        SID, TOKEN, from_number="+15555550100", base_url=f"http://127.0.0.1:{port}", timeout=2
    )
    with pytest.raises(SmsRetryableError):
        await sender.send(to=PATIENT, body=BODY, idempotency_key="outbox-8")


async def test_file_sms_writes_one_json_per_key_and_overwrites(tmp_path: Path) -> None:
    sender = FileSms(tmp_path)
    first = await sender.send(to=PATIENT, body="first", idempotency_key="appt-7:reminder-24h:sms")
    again = await sender.send(to=PATIENT, body="second", idempotency_key="appt-7:reminder-24h:sms")
    other = await sender.send(to=PATIENT, body="other", idempotency_key="appt-8:reminder-24h:sms")

    assert first == again != other
    files = names(tmp_path)
    assert files == ["appt-7_reminder-24h_sms.json", "appt-8_reminder-24h_sms.json"]
    record = json.loads(sender.path_for("appt-7:reminder-24h:sms").read_text())
    assert record == {
        "id": first,
        "idempotency_key": "appt-7:reminder-24h:sms",
        "to": PATIENT,
        "body": "second",
    }


async def test_file_sms_translates_os_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(SmsRetryableError):
        await FileSms(blocker).send(to=PATIENT, body=BODY, idempotency_key="k")


@pytest.fixture(params=["file", "twilio"])
def sms_sender(request: pytest.FixtureRequest, tmp_path: Path) -> SmsSender:
    """Each implementation, built through the factory."""
    if request.param == "file":
        return get_sms_sender("file", outbox_dir=tmp_path)
    client = httpx.AsyncClient(transport=httpx.MockTransport(TwilioDouble()))
    return get_sms_sender(
        "twilio", account_sid=SID, auth_token=TOKEN, from_number="+15555550100", client=client
    )


async def test_contract_returns_a_provider_id(sms_sender: SmsSender) -> None:
    assert isinstance(sms_sender, SmsSender)
    message_id = await sms_sender.send(to=PATIENT, body=BODY, idempotency_key="contract-1")
    assert isinstance(message_id, str)
    assert message_id


async def test_contract_requires_an_idempotency_key(sms_sender: SmsSender) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        await sms_sender.send(to=PATIENT, body=BODY, idempotency_key="")


def test_get_sms_sender_fails_fast_on_missing_settings() -> None:
    with pytest.raises(ValueError, match="outbox_dir"):
        get_sms_sender("file")
    with pytest.raises(ValueError, match="account_sid"):
        get_sms_sender("twilio", from_number="+15555550100")
    with pytest.raises(ValueError, match="unknown SMS"):
        get_sms_sender("pager")  # type: ignore[arg-type]
