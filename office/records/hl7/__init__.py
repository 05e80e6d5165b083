"""HL7 v2 in: reading messages (`wire`), their data types, and what ADT and SIU events become."""

from __future__ import annotations

from office.records.hl7.events import ADT_EVENTS, SIU_EVENTS, SUPPORTED_EVENTS
from office.records.hl7.wire import (
    CLEARED,
    Encoding,
    Field,
    Header,
    Hl7Error,
    Hl7Message,
    Repetition,
    Segment,
    decode,
    parse_message,
    read_header,
)

__all__ = [
    "ADT_EVENTS",
    "CLEARED",
    "SIU_EVENTS",
    "SUPPORTED_EVENTS",
    "Encoding",
    "Field",
    "Header",
    "Hl7Error",
    "Hl7Message",
    "Repetition",
    "Segment",
    "decode",
    "parse_message",
    "read_header",
]
