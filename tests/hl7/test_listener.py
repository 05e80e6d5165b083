"""The MLLP listener over a real loopback socket: stored before AA, duplicates absorbed,
AR and AE with their reasons, the sender's delimiters in every ACK."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hl7.mllp import open_hl7_connection
from sqlalchemy.orm import Session, sessionmaker

from integrations.hl7 import CONTENT_TYPE, MllpSender, serve_mllp
from integrations.hl7.listener import MAX_MESSAGE_BYTES, MllpListenError
from integrations.hl7.samples import SampleCoverage, SamplePatient, adt_message, siu_message
from office.db import make_engine, make_sessionmaker
from office.migrate import upgrade
from office.records.hl7 import Encoding, parse_message
from office.settings import Settings
from tests.hl7.helpers import NOW, stored, with_listener

ODD = Encoding(field="*", component=":", repetition="@", escape="!", subcomponent="%")


def a08(control_id: str, *, encoding: Encoding | None = None, version: str = "2.5.1") -> bytes:
    return adt_message(
        "A08",
        control_id,
        SamplePatient(),
        coverages=(SampleCoverage(),),
        sent_at=NOW,
        encoding=encoding,
        version=version,
    )


def test_a_message_is_committed_before_its_aa(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    seen: list[int] = []

    async def work(port: int) -> None:
        async with MllpSender("127.0.0.1", port) as sender:
            ack = await sender.send(a08("CTRL-1"))
            assert (ack.code, ack.control_id) == ("AA", "CTRL-1")
            # The ACK came after the commit: another session sees the row right now.
            rows = stored(factory)
            assert [(r.source, r.idempotency_key) for r in rows] == [("hl7:RIVERBEND", "CTRL-1")]
            seen.append(rows[0].id)

    dispatched: list[tuple[int, str]] = []

    async def dispatcher(inbox_id: int, key: str) -> str:
        dispatched.append((inbox_id, key))
        return "run"

    asyncio.run(with_listener(settings, factory, work, dispatcher=dispatcher))
    (row,) = stored(factory)
    assert row.body == a08("CTRL-1")
    assert row.content_type == CONTENT_TYPE
    assert dispatched == [(seen[0], f"inbox-{seen[0]}-0")]


def test_a_repeated_control_id_is_acknowledged_and_stored_once(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    dispatched: list[int] = []

    async def dispatcher(inbox_id: int, key: str) -> None:
        dispatched.append(inbox_id)

    async def work(port: int) -> list[str]:
        codes = []
        async with MllpSender("127.0.0.1", port) as sender:
            for _ in range(3):
                codes.append((await sender.send(a08("CTRL-DUP"))).code)
        async with MllpSender("127.0.0.1", port) as other:  # a resend on a new connection
            codes.append((await other.send(a08("CTRL-DUP"))).code)
        return codes

    assert asyncio.run(with_listener(settings, factory, work, dispatcher=dispatcher)) == ["AA"] * 4
    assert len(stored(factory)) == 1
    assert len(dispatched) == 1


def test_the_same_control_id_from_two_facilities_is_two_messages(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    other = a08("CTRL-9").replace(b"|RIVERBEND|", b"|LAKESIDE|", 1)

    async def work(port: int) -> None:
        async with MllpSender("127.0.0.1", port) as sender:
            assert (await sender.send(a08("CTRL-9"))).accepted
            assert (await sender.send(other)).accepted

    asyncio.run(with_listener(settings, factory, work))
    assert {r.source for r in stored(factory)} == {"hl7:RIVERBEND", "hl7:LAKESIDE"}


def test_the_ack_speaks_the_senders_delimiters_and_version(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def work(port: int) -> bytes:
        async with MllpSender("127.0.0.1", port) as sender:
            return (await sender.send(a08("ODD-1", encoding=ODD, version="2.3"))).raw

    raw = asyncio.run(with_listener(settings, factory, work))
    assert raw.startswith(b"MSH*:@!%*")
    ack = parse_message(raw)
    assert ack.header.message_type == "ACK^A08"
    assert ack.header.version == "2.3"
    assert ack.header.receiving_facility == "RIVERBEND"
    msa = ack.first("MSA")
    assert msa is not None
    assert (msa[1].text(), msa[2].text()) == ("AA", "ODD-1")
    assert ack.first("ERR") is None


@pytest.mark.parametrize(
    ("message", "where", "words"),
    [
        (
            b"MSH|^~\\&|LAB|RIVERBEND|OF|OF|20260302||ORU^R01|LAB-1|P|2.5.1\rPID|1\r",
            "MSH^1^9",
            "ORU is not read here",
        ),
        (
            b"MSH|^~\\&|PM|RIVERBEND|OF|OF|20260302||ADT^A03|DIS-1|P|2.5.1\rPID|1\r",
            "MSH^1^9",
            "ADT^A03 is not read here",
        ),
        (
            b"MSH|^~\\&|PM|RIVERBEND|OF|OF|20260302||ADT^A08||P|2.5.1\rPID|1\r",
            "MSH^1^10",
            "control id is empty",
        ),
    ],
)
def test_a_message_that_cannot_be_stored_as_sent_gets_ar_with_the_reason(
    settings: Settings, factory: sessionmaker[Session], message: bytes, where: str, words: str
) -> None:
    async def work(port: int) -> bytes:
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        writer.writeblock(message)
        await writer.drain()
        raw: bytes = await reader.readblock()
        writer.close()
        return raw

    raw = asyncio.run(with_listener(settings, factory, work))
    ack = parse_message(raw)
    msa, err = ack.first("MSA"), ack.first("ERR")
    assert msa is not None
    assert err is not None
    assert msa[1].text() == "AR"
    assert words in msa[3].text()
    assert "^".join(err[2].text(n) for n in (1, 2, 3)) == where
    assert err[4].text() == "E"
    assert words in err[8].text()
    assert stored(factory) == []


def test_bytes_that_are_not_hl7_get_ar_and_the_connection_goes_on(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def work(port: int) -> tuple[bytes, str]:
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        writer.writeblock(b"GET / HTTP/1.1\r\n\r\n")
        await writer.drain()
        first = await reader.readblock()
        writer.close()
        async with MllpSender("127.0.0.1", port) as sender:
            second = (await sender.send(a08("AFTER-1"))).code
        return first, second

    first, second = asyncio.run(with_listener(settings, factory, work))
    msa = parse_message(first).first("MSA")
    assert msa is not None
    assert msa[1].text() == "AR"
    assert "MSH" in msa[3].text()
    assert second == "AA"


def test_an_ack_before_2_5_carries_the_error_in_err_1(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    message = b"MSH|^~\\&|PM|RIVERBEND|OF|OF|20260302||ORM^O01|ORD-1|P|2.3\rPID|1\r"

    async def work(port: int) -> bytes:
        reader, writer = await open_hl7_connection("127.0.0.1", port)
        writer.writeblock(message)
        await writer.drain()
        raw: bytes = await reader.readblock()
        writer.close()
        return raw

    err = parse_message(asyncio.run(with_listener(settings, factory, work))).first("ERR")
    assert err is not None
    assert [err[1].text(n) for n in (1, 2, 3)] == ["MSH", "1", "9"]
    assert err[1].text(4, 1) == "200"


def test_a_message_the_database_cannot_take_gets_ae_and_is_stored_on_resend(
    settings: Settings, tmp_path: Path
) -> None:
    """No schema yet (a database being restored, say): AE, nothing half-stored; once the
    database is back the sender's resend gets AA and the message is there once."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    factory = make_sessionmaker(engine)

    async def work(port: int) -> tuple[str, str, str]:
        async with MllpSender("127.0.0.1", port) as sender:
            first = await sender.send(a08("LATE-1"))
            await asyncio.to_thread(upgrade, engine)
            second = await sender.send(a08("LATE-1"))
        return first.code, first.text, second.code

    code, text, again = asyncio.run(with_listener(settings, factory, work))
    assert code == "AE"
    assert "not stored" in text
    assert again == "AA"
    assert [r.idempotency_key for r in stored(factory)] == ["LATE-1"]
    engine.dispose()


def test_a_dispatcher_that_fails_leaves_the_item_for_the_sweeper(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def dispatcher(inbox_id: int, key: str) -> None:
        raise ConnectionError("Prefect is down")

    async def work(port: int) -> str:
        async with MllpSender("127.0.0.1", port) as sender:
            return (await sender.send(a08("DOWN-1"))).code

    assert asyncio.run(with_listener(settings, factory, work, dispatcher=dispatcher)) == "AA"
    (row,) = stored(factory)
    assert row.status.value == "pending"


def test_senders_on_separate_connections_are_served_side_by_side(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def one(port: int, sender_no: int) -> list[str]:
        async with MllpSender("127.0.0.1", port) as sender:
            return [(await sender.send(a08(f"S{sender_no}-{n}"))).code for n in range(20)]

    async def work(port: int) -> list[list[str]]:
        return list(await asyncio.gather(*(one(port, s) for s in range(4))))

    results = asyncio.run(with_listener(settings, factory, work))
    assert results == [["AA"] * 20] * 4
    assert len(stored(factory)) == 80


def test_an_siu_is_stored_like_an_adt(settings: Settings, factory: sessionmaker[Session]) -> None:
    message = siu_message(
        "S12", "SIU-1", appointment_id="A-1", mrn="MRN10001", start=NOW, sent_at=NOW
    )

    async def work(port: int) -> str:
        async with MllpSender("127.0.0.1", port) as sender:
            return (await sender.send(message)).code

    assert asyncio.run(with_listener(settings, factory, work)) == "AA"
    assert [r.idempotency_key for r in stored(factory)] == ["SIU-1"]


def test_a_message_over_the_size_limit_gets_ar(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    huge = a08("BIG-1").replace(b"\rEVN|", b"\rNTE|1||" + b"x" * MAX_MESSAGE_BYTES + b"\rEVN|")

    async def work(port: int) -> str:
        return await _raw_code(port, huge)

    assert asyncio.run(with_listener(settings, factory, work)) == "AR"
    assert stored(factory) == []


async def _raw_code(port: int, message: bytes) -> str:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    writer.writeblock(message)
    await writer.drain()
    msa = parse_message(await reader.readblock()).first("MSA")
    writer.close()
    assert msa is not None
    return msa[1].text()


def test_a_taken_port_is_one_clear_error(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def work(port: int) -> str:
        taken = settings.model_copy(update={"mllp_host": "127.0.0.1", "mllp_port": port})
        with pytest.raises(MllpListenError) as caught:
            await serve_mllp(taken, factory, None)
        return str(caught.value)

    message = asyncio.run(with_listener(settings, factory, work))
    assert "is taken" in message
    assert "OFFICE_MLLP_PORT" in message
