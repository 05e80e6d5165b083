"""Property tests: parse_271 returns a list or raises X12Error, whatever it is fed, and the
builders' output always reads back with the same structure and cleaned values."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from integrations.x12 import (
    Scenario,
    X12Error,
    build_270,
    build_271,
    parse_270,
    parse_271,
    results_to_json,
    tokenize,
)
from office.eligibility.types import CoverageStatus, EligibilityRequest, EligibilityResult, Person

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "x12"
SAMPLE_BYTES = [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix != ".md"]
WHEN = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
ISA_5010 = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*240101*1200*^*00501*000000001*0*T*:~"
)
# Values from the samples that must never surface in an error message.
SAMPLE_VALUES = ("SMITH", "JOHN", "MARY", "123456789", "R11111111", "GOLD 123", "DOE")
SEPARATOR_CHARS = "*~^:"
STRUCTURAL = [b"~", b"*", b"|", b"^", b":", b">", b"}", b"\r\n", b"\r", b"\n", b"\x1d"]
STRUCTURAL += [b"\xef\xbb\xbf", b"ISA*00*"]
STRUCTURAL += [b"HL*", b"HL|4|3|23|0~", b"EB*", b"EB|1|", b"AAA*", b"AAA|Y||42|Y~", b"ST*271*"]
STRUCTURAL += [b"SE*", b"NM1*", b"LS*2120~", b"LE*2120~", b"DTP*346*RD8*", b"\xff\xfe", b"\x00"]

fuzz = settings(max_examples=200, deadline=None)


def parses_or_refuses(data: bytes | str) -> list[EligibilityResult] | None:
    """The contract: a list of results, or X12Error with a one-line, value-free message."""
    try:
        results = parse_271(data)
    except X12Error as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        assert not any(value in message for value in SAMPLE_VALUES)
        return None
    assert isinstance(results, list)
    assert all(isinstance(result, EligibilityResult) for result in results)
    assert all(isinstance(result.status, CoverageStatus) for result in results)
    results_to_json(results)
    return results


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLE_BYTES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        if kind == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(STRUCTURAL) | st.binary(min_size=1, max_size=8))
        elif kind == "replace":
            data[at] = draw(st.integers(min_value=0, max_value=255))
        else:
            del data[at:]
    return bytes(data)


@fuzz
@given(st.binary(max_size=2000))
def test_random_bytes_never_escape_as_anything_but_x12error(data: bytes) -> None:
    parses_or_refuses(data)


@fuzz
@given(st.text(max_size=2000))
def test_random_text_never_escapes_as_anything_but_x12error(data: str) -> None:
    parses_or_refuses(data)


@fuzz
@given(st.text(alphabet=string.ascii_uppercase + string.digits + "*|^:~>}\r\n \t", max_size=600))
def test_text_after_a_valid_isa_never_escapes(tail: str) -> None:
    parses_or_refuses(ISA_5010 + tail)


@fuzz
@given(mutated_samples())
def test_mutated_samples_never_escape_as_anything_but_x12error(data: bytes) -> None:
    parses_or_refuses(data)


@fuzz
@given(st.sampled_from(SAMPLE_BYTES), st.data())
def test_truncated_samples_never_escape(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(min_value=0, max_value=len(data)))
    parses_or_refuses(data[:cut])


def removed(value: str) -> str:
    return value.translate(str.maketrans("", "", SEPARATOR_CHARS))


def cleaned_name(value: str) -> str:
    return " ".join(removed(value).split())


ids = st.text(
    alphabet=string.ascii_uppercase + string.digits + "-" + SEPARATOR_CHARS, min_size=1, max_size=15
)
names = st.text(alphabet=string.ascii_letters + " '-" + SEPARATOR_CHARS, max_size=30)


@st.composite
def requests(draw: st.DrawFn) -> EligibilityRequest:
    subscriber = Person(
        first_name=draw(names),
        last_name=draw(names),
        date_of_birth=draw(st.none() | st.dates()),
        sex=draw(st.sampled_from([None, "M", "F", "U"])),
        member_id=draw(st.none() | ids),
    )
    dependent = draw(st.none() | st.builds(Person, first_name=names, last_name=names))
    request = EligibilityRequest(
        trace=draw(ids),
        payer_code=draw(ids),
        provider_npi=draw(ids),
        provider_name=draw(names),
        provider_first_name=draw(st.none() | names.filter(lambda n: bool(cleaned_name(n)))),
        subscriber=subscriber,
        date_of_service=draw(st.dates(min_value=date(1900, 1, 1))),
        service_type=draw(st.sampled_from(["30", "98", "33", "MH", "UC"])),
        payer_name=draw(names),
        dependent=dependent,
    )
    assume(all(removed(v) for v in (request.trace, request.payer_code, request.provider_npi)))
    return request


@fuzz
@given(requests(), st.integers(min_value=1, max_value=999_999_999))
def test_build_270_reads_back_with_cleaned_values(
    request: EligibilityRequest, control: int
) -> None:
    text = build_270(request, interchange_control=control, when=WHEN)
    _, segments = tokenize(text)
    assert len(text[: text.index("~") + 1]) == 106
    expected_ids = ["ISA", "GS", "ST", "BHT", "HL", "NM1", "HL", "NM1", "HL"]
    tail = ["SE", "GE", "IEA"]
    assert [s[0] for s in segments[: len(expected_ids)]] == expected_ids
    assert [s[0] for s in segments[-3:]] == tail
    assert segments[-3][1] == str(len(segments) - 4)
    assert segments[0][13] == f"{control:09d}"

    (back,) = parse_270(text)
    assert back.trace == removed(request.trace)
    assert back.payer_code == removed(request.payer_code)
    assert back.provider_npi == removed(request.provider_npi)
    assert back.member_id == (removed(request.subscriber.member_id or "") or None)
    assert back.subscriber.last_name == cleaned_name(request.subscriber.last_name)
    assert back.subscriber.first_name == cleaned_name(request.subscriber.first_name)
    assert back.subscriber.date_of_birth == request.subscriber.date_of_birth
    assert back.date_of_service == request.date_of_service
    assert back.service_type == request.service_type
    assert (back.dependent is None) == (request.dependent is None)
    if request.dependent is not None and back.dependent is not None:
        assert back.dependent.last_name == cleaned_name(request.dependent.last_name)


@fuzz
@given(requests(), st.integers(min_value=1, max_value=999_999_999))
def test_build_271_answers_read_back_active(request: EligibilityRequest, control: int) -> None:
    text = build_271(request, interchange_control=control, scenario=Scenario(), when=WHEN)
    (result,) = parse_271(text, service_type=request.service_type)
    assert result.status == CoverageStatus.ACTIVE
    assert result.trace == removed(request.trace)
    assert result.payer_code == removed(request.payer_code)
    assert result.member_id == (removed(request.subscriber.member_id or "") or None)
    assert result.is_dependent == (request.dependent is not None)
