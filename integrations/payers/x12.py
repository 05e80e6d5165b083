"""Real-time 270/271 over HTTP to a clearinghouse: raw X12, or the CAQH CORE 2.2.0 envelope.

The answer may come back as raw X12 or as a CORE multipart envelope with a Payload field,
whichever mode the request used; both are read.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any, ClassVar, Literal

import httpx

from integrations.payers.base import (
    ControlNumbers,
    answer_limit,
    error_for_status,
    post_capped,
    read_answer,
    response_from_271,
    secret_setting,
    setting,
)
from integrations.x12 import X12Error, build_270
from office.contracts.payers import (
    PayerConfigError,
    PayerRejected,
    PayerResponse,
    PayerResponseInvalid,
)
from office.eligibility.types import EligibilityRequest

__all__ = ["CORE_RULE_VERSION", "CORE_X12_270", "X12Payer", "read_core_envelope"]

logger = logging.getLogger(__name__)

CORE_X12_270 = "X12_270_Request_005010X279A1"
CORE_RULE_VERSION = "2.2.0"
_CORE_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def read_core_envelope(content_type: str, body: bytes) -> dict[str, str] | None:
    """The fields of a multipart/form-data body, or None when it is not multipart."""
    if not content_type.lower().startswith("multipart/"):
        return None
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        return {}
    fields: dict[str, str] = {}
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = _field_name(part)
        if name is None or name in fields:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", errors="replace")
        elif isinstance(part.get_payload(), str):
            fields[name] = str(part.get_payload())
    return fields


def _field_name(part: Message) -> str | None:
    disposition = part.get("Content-Disposition")
    if disposition is None:
        return None
    name = part.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else None


class X12Payer:
    """Posts a 270 to a clearinghouse endpoint and reads the 271 it answers with.

    Settings (``config``):
        url: The clearinghouse's real-time endpoint (required).
        auth_header, auth_value: One header carrying the credential, e.g.
            ``Authorization`` / ``Basic ...``; both or neither.
        mode: "raw" (default) posts the X12 as ``application/edi-x12``; "core" posts the
            CAQH CORE 2.2.0 ``multipart/form-data`` envelope.
        sender_id, receiver_id: ISA06/ISA08 and the CORE SenderID/ReceiverID;
            ``OFFICEFLOWS`` and the payer code by default.
        usage: ISA15, "P" (default) or "T".
        control_start: First interchange control number; random when not given.
        max_answer_bytes: The largest answer read (`base.MAX_ANSWER_BYTES` by default).
    """

    name: ClassVar[str] = "x12"

    def __init__(self, config: Mapping[str, Any], client: httpx.AsyncClient) -> None:
        self._client = client
        self._url: str = setting(config, self.name, "url", str)
        if not self._url.startswith(("http://", "https://")):
            raise PayerConfigError("payer adapter 'x12': setting 'url' must be an http(s) URL")
        header = setting(config, self.name, "auth_header", str, "")
        self._auth: dict[str, str] = {}
        if header:
            self._auth[header] = secret_setting(config, self.name, "auth_value")
        elif config.get("auth_value"):
            raise PayerConfigError("payer adapter 'x12': 'auth_value' needs 'auth_header'")
        mode = setting(config, self.name, "mode", str, "raw")
        if mode not in ("raw", "core"):
            raise PayerConfigError("payer adapter 'x12': setting 'mode' must be 'raw' or 'core'")
        self._mode: Literal["raw", "core"] = mode
        self._sender: str = setting(config, self.name, "sender_id", str, "OFFICEFLOWS")
        self._receiver: str | None = setting(config, self.name, "receiver_id", str, "") or None
        usage = setting(config, self.name, "usage", str, "P")
        if usage not in ("P", "T"):
            raise PayerConfigError("payer adapter 'x12': setting 'usage' must be 'P' or 'T'")
        self._usage: str = usage
        self._controls = ControlNumbers(setting(config, self.name, "control_start", int, 0) or None)
        self._limit = answer_limit(config, self.name)

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        """Send one 270 and return the answer for its patient loop."""
        control = self._controls.next()
        try:
            inquiry = build_270(
                request,
                interchange_control=control,
                sender_id=self._sender,
                receiver_id=self._receiver,
                usage=self._usage,
            )
        except X12Error as exc:
            raise PayerRejected(f"cannot build the 270: {exc}") from exc
        if self._mode == "core":
            response, body = await post_capped(
                self._client,
                self._url,
                limit=self._limit,
                headers=self._auth,
                files=self._envelope(request, inquiry),
            )
        else:
            headers = {**self._auth, "Content-Type": "application/edi-x12"}
            response, body = await post_capped(
                self._client,
                self._url,
                limit=self._limit,
                headers=headers,
                content=inquiry.encode("utf-8"),
            )
        logger.debug("x12 payer answered HTTP %s for control %s", response.status_code, control)
        return await read_answer(len(body), self._read, request, response, body)

    def _envelope(self, request: EligibilityRequest, inquiry: str) -> dict[str, tuple[None, str]]:
        """CORE 2.2.0 real-time fields, as form fields without file names."""
        fields = {
            "PayloadType": CORE_X12_270,
            "ProcessingMode": "RealTime",
            "PayloadID": str(uuid.uuid4()),
            "TimeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SenderID": self._sender,
            "ReceiverID": self._receiver or request.payer_code,
            "CORERuleVersion": CORE_RULE_VERSION,
            "Payload": inquiry,
        }
        return {name: (None, value) for name, value in fields.items()}

    def _read(
        self, request: EligibilityRequest, response: httpx.Response, body: bytes
    ) -> PayerResponse:
        status = response.status_code
        raw = _text(body)
        failure = error_for_status(response, raw)
        if failure is not None and not isinstance(failure, PayerRejected):
            raise failure
        payload, envelope_error = self._payload(response, body, raw)
        if failure is not None:
            # A 4xx may still carry a 271 with the AAA that explains it; read that first.
            if payload is not None:
                try:
                    return response_from_271(request, payload, status_code=status)
                except PayerResponseInvalid:
                    pass
            raise failure
        if payload is None:
            if envelope_error:
                raise PayerRejected(f"CORE envelope error {envelope_error}", status_code=status)
            raise PayerResponseInvalid("CORE envelope has no Payload", raw=raw, status_code=status)
        return response_from_271(request, payload, status_code=status)

    def _payload(
        self, response: httpx.Response, body: bytes, raw: str
    ) -> tuple[str | None, str | None]:
        """The 271 text, from a CORE envelope or the raw body, and any CORE error code."""
        try:
            fields = read_core_envelope(response.headers.get("content-type", ""), body)
        except Exception as exc:
            raise PayerResponseInvalid(
                f"unreadable multipart answer ({type(exc).__name__})", raw=raw
            ) from exc
        if fields is None:
            return raw, None
        code = fields.get("ErrorCode", "").strip()
        error = code if code and code != "Success" and _CORE_ERROR_CODE.match(code) else None
        return fields.get("Payload"), error


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")
