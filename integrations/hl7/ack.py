"""Original-mode acknowledgements: MSH + MSA (+ ERR when something went wrong).

The ACK speaks the sender's delimiters and version, names the message it answers in
MSA-2 (its MSH-10) and, for AE and AR, gives the reason in MSA-3 and in ERR: ERR-1 for
senders before v2.5, ERR-2/3/4/8 from v2.5 on. Reasons are ours (field names and codes),
never text from the message.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

from office.records.hl7.wire import Encoding, Header

__all__ = ["AckCode", "ErrorCode", "Rejection", "compose_ack"]

RECEIVER = "OFFICEFLOWS"
_VERSION = re.compile(r"(\d+)\.(\d+)")


class AckCode(StrEnum):
    ACCEPTED = "AA"
    ERROR = "AE"  # could not be stored now; the sender should send it again
    REJECTED = "AR"  # will never be stored as sent; resending the same bytes will not help


class ErrorCode(IntEnum):
    """HL7 table 0357."""

    SEGMENT_SEQUENCE = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE = 102
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT = 201
    APPLICATION_INTERNAL = 207

    @property
    def text(self) -> str:
        return self.name.replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message got AE or AR: a code of table 0357, a reason, where (e.g. "MSH-10")."""

    code: AckCode
    error: ErrorCode
    reason: str
    where: str = ""


def compose_ack(
    header: Header | None,
    encoding: Encoding,
    *,
    rejection: Rejection | None = None,
    now: datetime | None = None,
) -> bytes:
    """The ACK for a message (`header` None when its MSH could not be read)."""
    e = encoding
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    version = header.version if header and header.version else "2.5.1"
    code = rejection.code if rejection else AckCode.ACCEPTED

    def text(value: str) -> str:
        return e.escape_text(value)

    msh = [
        "MSH",
        e.characters,
        text(header.receiving_application if header and header.receiving_application else RECEIVER),
        text(header.receiving_facility if header else ""),
        text(header.sending_application if header else ""),
        text(header.sending_facility if header else ""),
        moment.strftime("%Y%m%d%H%M%S+0000"),
        "",
        e.component.join(["ACK", text(header.trigger if header else ""), "ACK"]),
        secrets.token_hex(10),
        text(header.processing_id if header and header.processing_id else "P"),
        text(version),
    ]
    segments = [e.field.join(msh)]
    msa = ["MSA", code.value, text(header.control_id if header else "")]
    if rejection is not None:
        msa.append(text(rejection.reason))
        segments += [e.field.join(msa), e.field.join(_err(rejection, e, version))]
    else:
        segments.append(e.field.join(msa))
    return ("\r".join(segments) + "\r").encode("ascii", "replace")


def _err(rejection: Rejection, e: Encoding, version: str) -> list[str]:
    segment, _, field = rejection.where.partition("-")
    number = field.split(".", 1)[0]
    coded = [str(int(rejection.error)), rejection.error.text, "HL70357"]
    if _before_2_5(version):
        # ERR-1 (ELD): segment^sequence^field^code&text&table.
        eld = [e.escape_text(segment), "1" if segment else "", number]
        return ["ERR", e.component.join([*eld, e.subcomponent.join(coded)])]
    location = e.component.join([e.escape_text(segment), "1", number]) if segment else ""
    reason = e.escape_text(rejection.reason)
    # ERR-2 location, ERR-3 HL7 error code, ERR-4 severity (E: error), ERR-8 user message.
    return ["ERR", "", location, e.component.join(coded), "E", "", "", "", reason]


def _before_2_5(version: str) -> bool:
    found = _VERSION.match(version)
    if found is None:
        return False
    return (int(found[1]), int(found[2])) < (2, 5)
