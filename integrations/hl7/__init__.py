"""HL7 v2 over MLLP: the listener `office serve` runs, its ACKs, and a sender that resends."""

from __future__ import annotations

from integrations.hl7.ack import AckCode, ErrorCode, Rejection, compose_ack
from integrations.hl7.listener import (
    CONTENT_TYPE,
    Dispatcher,
    MllpListenError,
    Receipt,
    receive,
    serve_mllp,
    source_for,
)
from integrations.hl7.sender import Ack, MllpSender, MllpSendError

__all__ = [
    "CONTENT_TYPE",
    "Ack",
    "AckCode",
    "Dispatcher",
    "ErrorCode",
    "MllpListenError",
    "MllpSendError",
    "MllpSender",
    "Receipt",
    "Rejection",
    "compose_ack",
    "receive",
    "serve_mllp",
    "source_for",
]
