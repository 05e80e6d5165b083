"""Reading HL7 v2: delimiters from MSH, escapes, repetitions, `""`, character sets, and any
bytes at all ending in a message or in an `Hl7Error` that says where."""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.hl7.samples import SampleCoverage, SamplePatient, adt_message
from office.records.hl7 import CLEARED, Encoding, Hl7Error, parse_message, read_header
from tests.hl7.helpers import NOW

ODD = Encoding(field="*", component=":", repetition="@", escape="!", subcomponent="%")


def test_the_delimiters_are_read_from_msh_not_assumed() -> None:
    body = adt_message("A08", "ODD-1", SamplePatient(), sent_at=NOW, encoding=ODD)
    message = parse_message(body)
    assert message.encoding == ODD
    pid = message.first("PID")
    assert pid is not None
    assert [r.text(1) for r in pid[3].present] == ["MRN10001", "E-77001"]
    assert pid[5].text(1) == "Testperson"
    assert pid[5].text(2) == "Avery"
    # The e-mail's "@" is this sender's repetition separator, so it travels as !R!.
    assert b"!R!" in body
    assert pid[13].present[1].text(4) == "avery.testperson@example.com"


def test_escape_sequences_stand_for_the_delimiters() -> None:
    body = (
        b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|E-1|P|2.5.1\r"
        b"PID|1||M1^^^FAC^MR||O\\S\\Brien\\T\\Co^Ann \\F\\ Bea\\R\\x\\E\\y||19800101|F|||"
        b"1 Main St\\.br\\Unit 2^^Town^IL^62701\r"
    )
    pid = parse_message(body).first("PID")
    assert pid is not None
    assert pid[5].text(1) == "O^Brien&Co"
    assert pid[5].text(2) == "Ann | Bea~x\\y"
    assert pid[11].text(1) == "1 Main St\rUnit 2"


def test_hex_and_highlight_escapes_are_decoded() -> None:
    body = b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|E-2|P\rPID|1||M1||\\H\\Jos\\XE9\\\\N\\^Li\r"
    pid = parse_message(body).first("PID")
    assert pid is not None
    assert pid[5].text(1) == "Jos\u00e9"


@pytest.mark.parametrize(
    "value", [b"\\Zcustom\\", b"Smith\\", b"\\C2842\\x", b"\\X4\\", b"\\\\"], ids=repr
)
def test_an_escape_this_receiver_cannot_decode_names_its_field(value: bytes) -> None:
    body = b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|E-3|P\rPID|1||M1||" + value + b"^Li\r"
    pid = parse_message(body).first("PID")
    assert pid is not None
    assert pid[5].text(2) == "Li"  # the field next door still reads
    with pytest.raises(Hl7Error) as caught:
        pid[5].text(1)
    assert caught.value.where == "PID-5.1"
    assert "Smith" not in str(caught.value)


def test_repetitions_components_and_subcomponents() -> None:
    body = (
        b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|R-1|P\r"
        b"PID|1||A1^^^HOSP&1.2.840.1&ISO^MR~B2^^^HIE^PI~~C3||Doe^Jo\r"
    )
    pid = parse_message(body).first("PID")
    assert pid is not None
    reps = pid[3].present
    assert [r.text(1) for r in reps] == ["A1", "B2", "C3"]
    assert (reps[0].text(4, 1), reps[0].text(4, 2), reps[0].text(4, 3)) == (
        "HOSP",
        "1.2.840.1",
        "ISO",
    )
    assert len(pid[3].repetitions) == 4  # the empty one is kept, and not "present"


def test_two_double_quotes_are_kept_apart_from_an_empty_field() -> None:
    body = b'MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|Q-1|P\rPID|1||M1||Doe^Jo|||""||\r'
    pid = parse_message(body).first("PID")
    assert pid is not None
    assert pid[8].cleared
    assert pid[8].text() == CLEARED
    assert pid[7].blank
    assert not pid[7].cleared
    assert pid[40].blank  # a field past the end is blank, not an error


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_any_line_ending_separates_segments(ending: bytes) -> None:
    body = adt_message("A08", "LE-1", SamplePatient(), sent_at=NOW).replace(b"\r", ending)
    message = parse_message(body)
    assert [s.name for s in message.segments] == ["MSH", "EVN", "PID", "PD1", "PV1"]


def test_the_character_set_comes_from_msh_18() -> None:
    latin = (
        "MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|CS-1|P|2.5.1||||||8859/1\rPID|1||M1||Müller^Zoë\r"
    ).encode("iso8859-1")
    pid = parse_message(latin).first("PID")
    assert pid is not None
    assert (pid[5].text(1), pid[5].text(2)) == ("Müller", "Zoë")
    utf8 = "MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|CS-2|P\rPID|1||M1||Müller\r".encode()
    assert parse_message(utf8).first("PID")[5].text() == "Müller"  # type: ignore[index]
    with pytest.raises(Hl7Error, match="MSH-18"):
        parse_message(latin.replace(b"8859/1", b"EBCDIC"))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"", "MSH"),
        (b"PID|1||M1\r", "MSH"),
        (b"MSH|^~\\&", "MSH"),
        (b"MSH|^~|PM|FAC|OF|OF|20260302||ADT^A08|X|P\r", "MSH-2"),
        (b"MSH|^^\\&|PM|FAC|OF|OF|20260302||ADT^A08|X|P\r", "MSH-2"),
        (b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08||P\r", "MSH-10"),
        (b"MSH|^~\\&|PM|FAC|OF|OF|20260302|||X|P\r", "MSH-9"),
        (b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|X|P\rpid|1\r", ""),
    ],
)
def test_what_is_not_one_message_is_refused_with_where(body: bytes, where: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        parse_message(body)
    assert caught.value.where == where
    assert caught.value.reason


def test_two_messages_in_one_payload_are_refused() -> None:
    one = adt_message("A08", "TWO-1", SamplePatient(), sent_at=NOW)
    with pytest.raises(Hl7Error, match="more than one message"):
        parse_message(one + one)


def test_read_header_reads_msh_alone() -> None:
    body = adt_message("A04", "H-1", SamplePatient(), coverages=(SampleCoverage(),), sent_at=NOW)
    encoding, header = read_header(body + b"ZZZ|this segment is never looked at\\Q")
    assert encoding == Encoding()
    assert (header.message_type, header.control_id, header.sending_facility) == (
        "ADT^A04",
        "H-1",
        "RIVERBEND",
    )
    assert header.version == "2.5.1"


# --- properties ---------------------------------------------------------------------------

PUNCTUATION = [c for c in string.punctuation if c not in "\"'"]


@st.composite
def encodings(draw: st.DrawFn) -> Encoding:
    chars = draw(st.permutations(PUNCTUATION))[:5]
    return Encoding(*chars)


TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"'),
    max_size=30,
)


@given(encoding=encodings(), family=TEXT, given_name=TEXT, street=TEXT)
def test_any_value_survives_any_delimiters(
    encoding: Encoding, family: str, given_name: str, street: str
) -> None:
    patient = SamplePatient(family=family, given=given_name, street=street)
    message = parse_message(adt_message("A08", "P-1", patient, sent_at=NOW, encoding=encoding))
    pid = message.first("PID")
    assert pid is not None
    assert pid[5].text(1) == family.strip()
    assert pid[5].text(2) == given_name.strip()
    assert pid[11].text(1) == street.strip()
    assert message.header.control_id == "P-1"


def _error(call: Callable[[], object]) -> Hl7Error | None:
    """The parser's own error from `call`, or None; anything else fails the test."""
    try:
        call()
    except Hl7Error as exc:
        return exc
    return None


@given(st.binary(max_size=400))
def test_any_bytes_are_a_message_or_an_error_that_says_where(body: bytes) -> None:
    error = _error(lambda: parse_message(body))
    if error is not None:
        assert error.reason
        return
    message = parse_message(body)
    for segment in message.segments:
        for field in segment.fields:
            for rep in field.repetitions:
                for number in range(1, len(rep.components) + 1):
                    found = _error(partial(rep.text, number))
                    assert found is None or found.where.startswith(segment.label)


@given(st.binary(max_size=200))
def test_any_bytes_after_a_valid_msh_parse_or_fail_cleanly(tail: bytes) -> None:
    head = b"MSH|^~\\&|PM|FAC|OF|OF|20260302||ADT^A08|B-1|P|2.5.1\r"
    error = _error(lambda: parse_message(head + tail))
    assert error is None or error.reason
