"""build_270 writes a well-formed inquiry; build_271 answers it so that parse_271 reads it back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.x12 import (
    Scenario,
    Separators,
    X12Error,
    build_270,
    build_271,
    parse_270,
    parse_271,
    tokenize,
)
from office.eligibility.types import (
    AaaAction,
    CoverageStatus,
    EligibilityRequest,
    EligibilityResult,
    Entity,
    Person,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "x12"
WHEN = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
SUBSCRIBER = Person(
    first_name="Robert",
    last_name="Smith",
    date_of_birth=date(1943, 5, 19),
    sex="M",
    member_id="11122333301",
    group_number="G100",
)
DEPENDENT = Person(first_name="Mary", last_name="Smith", date_of_birth=date(2010, 10, 14), sex="F")
REQUEST = EligibilityRequest(
    trace="chk-000123",
    payer_code="842610001",
    provider_npi="1234567893",
    provider_name="Bone and Joint Clinic",
    subscriber=SUBSCRIBER,
    date_of_service=date(2024, 3, 5),
    payer_name="ABC Company",
)
DEPENDENT_REQUEST = dataclasses.replace(REQUEST, dependent=DEPENDENT)


def ids(text: str) -> list[str]:
    return [segment[0] for segment in tokenize(text)[1]]


def segment(text: str, tag: str, *leading: str) -> list[str]:
    """The first segment with this id whose first elements match `leading`."""
    for candidate in tokenize(text)[1]:
        if candidate[0] == tag and candidate[1 : 1 + len(leading)] == list(leading):
            return candidate
    raise AssertionError(f"no {tag} segment")


def answer(request: EligibilityRequest, scenario: Scenario) -> list[EligibilityResult]:
    return parse_271(build_271(request, interchange_control=77, scenario=scenario, when=WHEN))


# --- build_270 -------------------------------------------------------------------------------


def test_270_subscriber_inquiry_layout() -> None:
    text = build_270(REQUEST, interchange_control=42, when=WHEN)
    separators, segments = tokenize(text)
    assert separators == Separators("*", "^", ":", "~")
    assert ids(text) == [
        "ISA", "GS", "ST", "BHT", "HL", "NM1", "HL", "NM1", "HL",
        "TRN", "NM1", "REF", "DMG", "DTP", "EQ", "SE", "GE", "IEA",
    ]  # fmt: skip
    assert segment(text, "GS")[1] == "HS"
    assert segment(text, "GS")[8] == "005010X279A1"
    assert segment(text, "ST") == ["ST", "270", "0042", "005010X279A1"]
    assert segment(text, "BHT")[1:3] == ["0022", "13"]
    assert segment(text, "HL", "3") == ["HL", "3", "2", "22", "0"]
    payer = segment(text, "NM1", "PR")
    assert (payer[2:4], payer[8:]) == (["2", "ABC Company"], ["PI", "842610001"])
    assert segment(text, "NM1", "1P")[2] == "2"
    assert segment(text, "NM1", "1P")[8:] == ["XX", "1234567893"]
    assert segment(text, "TRN") == ["TRN", "1", "chk-000123", "9OFFICEFLO"]
    assert segment(text, "NM1", "IL")[8:] == ["MI", "11122333301"]
    assert segment(text, "DMG") == ["DMG", "D8", "19430519", "M"]
    assert segment(text, "DTP") == ["DTP", "291", "D8", "20240305"]
    assert segment(text, "EQ") == ["EQ", "30"]
    assert segments[-3] == ["SE", str(len(segments) - 4), "0042"]


def test_270_isa_is_exactly_106_characters() -> None:
    text = build_270(REQUEST, interchange_control=1, when=WHEN)
    isa = text[: text.index("~") + 1]
    assert len(isa) == 106
    assert isa[3] == "*"
    assert (isa[82], isa[104], isa[105]) == ("^", ":", "~")
    assert isa[90:99] == "000000001"
    assert isa[102] == "P"


def test_270_usage_and_ids_are_configurable() -> None:
    text = build_270(
        REQUEST, interchange_control=5, sender_id="CLINIC9", receiver_id="CLEARING", usage="T"
    )
    isa = segment(text, "ISA")
    assert (isa[6], isa[8], isa[15]) == ("CLINIC9".ljust(15), "CLEARING".ljust(15), "T")
    assert segment(text, "TRN")[3] == "9CLINIC900"


def test_270_person_provider_is_entity_type_1() -> None:
    request = dataclasses.replace(REQUEST, provider_name="Jones", provider_first_name="Marcus")
    nm1 = segment(build_270(request, interchange_control=3, when=WHEN), "NM1", "1P")
    assert nm1 == ["NM1", "1P", "1", "Jones", "Marcus", "", "", "", "XX", "1234567893"]


def test_270_dependent_inquiry_goes_in_2000d() -> None:
    request = dataclasses.replace(DEPENDENT_REQUEST, service_type="98")
    text = build_270(request, interchange_control=9, when=WHEN)
    assert ids(text) == [
        "ISA", "GS", "ST", "BHT", "HL", "NM1", "HL", "NM1", "HL", "NM1", "REF", "DMG",
        "HL", "TRN", "NM1", "DMG", "DTP", "EQ", "SE", "GE", "IEA",
    ]  # fmt: skip
    assert segment(text, "HL", "3") == ["HL", "3", "2", "22", "1"]
    assert segment(text, "HL", "4") == ["HL", "4", "3", "23", "0"]
    assert segment(text, "NM1", "03") == ["NM1", "03", "1", "Smith", "Mary"]
    assert segment(text, "EQ") == ["EQ", "98"]
    assert segment(text, "SE")[1] == "17"  # ST through SE


def test_270_control_numbers_derive_from_the_interchange_control() -> None:
    first = tokenize(build_270(REQUEST, interchange_control=41, when=WHEN))[1]
    second = tokenize(build_270(REQUEST, interchange_control=123456789, when=WHEN))[1]

    def controls(segments: list[list[str]]) -> tuple[str, ...]:
        by_id = {s[0]: s for s in segments}
        return (
            by_id["ISA"][13],
            by_id["GS"][6],
            by_id["ST"][2],
            by_id["SE"][2],
            by_id["GE"][2],
            by_id["IEA"][2],
        )

    assert controls(first) == ("000000041", "41", "0041", "0041", "41", "000000041")
    assert controls(second) == ("123456789",) * 6
    assert set(controls(first)).isdisjoint(controls(second))


def test_270_separators_in_data_cannot_break_the_structure() -> None:
    hostile = dataclasses.replace(
        REQUEST,
        trace="tr*ace~1",
        payer_name="A*B~C^D:E",
        provider_name="Clinic~HL*9*",
        subscriber=dataclasses.replace(
            SUBSCRIBER,
            first_name="Ro*bert~",
            last_name="O'Brien^Smith:Jr\r\nSE*1",
            member_id="111*222~333",
        ),
    )
    text = build_270(hostile, interchange_control=8, when=WHEN)
    assert ids(text) == ids(build_270(REQUEST, interchange_control=8, when=WHEN))
    assert segment(text, "TRN")[2] == "trace1"
    assert segment(text, "NM1", "IL")[3:5] == ["O'BrienSmithJr SE1", "Robert"]
    assert segment(text, "NM1", "IL")[9] == "111222333"


def test_270_folds_accents_to_ascii() -> None:
    request = dataclasses.replace(
        REQUEST, subscriber=dataclasses.replace(SUBSCRIBER, first_name="José", last_name="Müller")
    )
    assert segment(build_270(request, interchange_control=8), "NM1", "IL")[3:5] == [
        "Muller",
        "Jose",
    ]


def test_270_reads_back_as_the_same_request() -> None:
    assert parse_270(build_270(REQUEST, interchange_control=2, when=WHEN)) == [REQUEST]
    dependent = dataclasses.replace(DEPENDENT_REQUEST, provider_first_name="Ann")
    assert parse_270(build_270(dependent, interchange_control=3, when=WHEN)) == [dependent]


@pytest.mark.parametrize(
    ("changes", "kwargs", "message"),
    [
        ({"payer_code": ""}, {}, "payer code is empty"),
        ({"provider_npi": "*~"}, {}, "provider NPI is empty"),
        ({"trace": "x" * 51}, {}, "trace is longer than 50"),
        ({"subscriber": dataclasses.replace(SUBSCRIBER, member_id="9" * 81)}, {}, "member id"),
        ({}, {"interchange_control": 0}, "control number"),
        ({}, {"interchange_control": 1_000_000_000}, "control number"),
        ({}, {"usage": "X"}, "usage indicator"),
        ({}, {"sender_id": "S" * 16}, "sender id is longer than 15"),
        ({"payer_code": "P" * 16}, {}, "receiver id is longer than 15"),
    ],
)
def test_270_refuses_what_it_cannot_encode(
    changes: dict[str, object], kwargs: dict[str, object], message: str
) -> None:
    request = dataclasses.replace(REQUEST, **changes)  # type: ignore[arg-type]
    arguments: dict[str, object] = {"interchange_control": 4, **kwargs}
    with pytest.raises(X12Error, match=message):
        build_270(request, **arguments)  # type: ignore[arg-type]


def test_270_errors_do_not_echo_values() -> None:
    secret = "MEMBER-SECRET-" + "9" * 70
    request = dataclasses.replace(
        REQUEST, subscriber=dataclasses.replace(SUBSCRIBER, member_id=secret)
    )
    with pytest.raises(X12Error) as info:
        build_270(request, interchange_control=4)
    assert "SECRET" not in str(info.value)


# --- parse_270 on the public samples ----------------------------------------------------------


def test_parse_270_reads_the_lfh_subscriber_inquiry() -> None:
    (request,) = parse_270(
        (SAMPLES / "LinuxForHealth__x12__subscriber-health-benefit-check.270").read_bytes()
    )
    assert (request.trace, request.payer_code, request.provider_npi) == (
        "93175-012547",
        "842610001",
        "2000035",
    )
    assert request.member_id == "11122333301"
    assert request.subscriber.date_of_birth == date(1943, 5, 19)
    assert (request.date_of_service, request.service_type) == (date(2006, 5, 1), "30")
    assert request.dependent is None


def test_parse_270_reads_the_lfh_dependent_inquiry() -> None:
    (request,) = parse_270(
        (SAMPLES / "LinuxForHealth__x12__dependent-health-benefit-check.270").read_bytes()
    )
    assert request.member_id == "11122333301"
    assert request.dependent is not None
    assert (request.dependent.first_name, request.dependent.last_name) == ("MARY", "SMITH")
    assert request.provider_first_name == "MARCUS"


@pytest.mark.parametrize(
    "name",
    [
        "Inteligenz__X12Parser__Example1_IG_0x1D.txt",
        "albmarin__badX12__X279-generic-request-by-clinic-for-patient-(subscriber)-eligibility.edi",
    ],
)
def test_parse_270_reads_odd_separators(name: str) -> None:
    (request,) = parse_270((SAMPLES / name).read_bytes())
    assert (request.trace, request.member_id) == ("93175-012547", "11122333301")


def test_parse_270_refuses_a_271() -> None:
    with pytest.raises(X12Error, match="271 is not a 270"):
        parse_270(
            (SAMPLES / "LinuxForHealth__x12__subscriber-health-benefit-check.271").read_bytes()
        )


# --- build_271 -> parse_271 ------------------------------------------------------------------


def test_271_active_with_copay_deductible_coinsurance() -> None:
    (result,) = answer(REQUEST, Scenario())
    assert result.status == CoverageStatus.ACTIVE
    assert (result.trace, result.member_id, result.payer_code) == (
        "chk-000123",
        "11122333301",
        "842610001",
    )
    assert (result.plan_name, result.insurance_type, result.group_number) == (
        "GOLD 123 PLAN",
        "HM",
        "G100",
    )
    assert (result.plan_begin, result.plan_end) == (date(2024, 1, 1), date(2024, 12, 31))
    copays = [(b.amount, b.network, b.time_period) for b in result.benefits if b.code == "B"]
    assert copays == [(Decimal("25"), "in", "27"), (Decimal("50"), "out", "27")]
    assert all(b.service_types == ("98",) for b in result.benefits if b.code == "B")
    deductibles = {b.time_period: b.amount for b in result.benefits if b.code == "C"}
    assert deductibles == {"23": Decimal("1500"), "29": Decimal("500")}
    (coinsurance,) = [b for b in result.benefits if b.code == "A"]
    assert (coinsurance.percent, coinsurance.network) == (Decimal("0.2"), "in")
    assert (result.pcp, result.other_payers, result.aaa) == (None, (), ())
    assert result.payer_corrected_data is False


def test_271_scenario_figures_and_dates_are_echoed() -> None:
    scenario = Scenario(
        plan_name="SILVER PPO",
        insurance_type="PR",
        plan_begin=date(2023, 7, 1),
        plan_end=date(2024, 6, 30),
        copay=Decimal("35.50"),
        copay_out_of_network=None,
        deductible=None,
        deductible_remaining=Decimal("12.34"),
        coinsurance=None,
    )
    (result,) = answer(REQUEST, scenario)
    assert (result.plan_name, result.insurance_type) == ("SILVER PPO", "PR")
    assert (result.plan_begin, result.plan_end) == (date(2023, 7, 1), date(2024, 6, 30))
    assert [(b.code, b.amount) for b in result.benefits[1:]] == [
        ("B", Decimal("35.50")),
        ("C", Decimal("12.34")),
    ]


def test_271_inactive() -> None:
    (result,) = answer(REQUEST, Scenario(status="inactive"))
    assert result.status == CoverageStatus.INACTIVE
    assert [b.code for b in result.benefits] == ["6"]


def test_271_payer_unable_to_respond() -> None:
    (result,) = answer(REQUEST, Scenario(aaa=(("2000A", "42", "Y"),)))
    assert result.status == CoverageStatus.UNVERIFIED
    assert result.member_id is None
    assert [(a.loop, a.code, a.followup, a.valid_request) for a in result.aaa] == [
        ("2000A", "42", "Y", True)
    ]
    assert result.aaa[0].action == AaaAction.RETRY_LATER
    assert result.benefits == ()


def test_271_provider_not_on_file() -> None:
    (result,) = answer(REQUEST, Scenario(aaa=(("2100B", "51", "C"),)))
    assert [(a.loop, a.action) for a in result.aaa] == [("2100B", AaaAction.FIX_PROVIDER_SETUP)]
    assert result.member_id is None


def test_271_subscriber_member_id_invalid() -> None:
    (result,) = answer(REQUEST, Scenario(aaa=(("2100C", "72", "C"), ("2100C", "73", "C"))))
    assert result.status == CoverageStatus.UNVERIFIED
    assert (result.member_id, result.trace) == ("11122333301", "chk-000123")
    assert [(a.loop, a.code, a.followup, a.valid_request) for a in result.aaa] == [
        ("2100C", "72", "C", False),
        ("2100C", "73", "C", False),
    ]
    assert {a.action for a in result.aaa} == {AaaAction.FIX_PATIENT_DATA}
    assert result.benefits == ()


def test_271_dependent_answer() -> None:
    (result,) = answer(DEPENDENT_REQUEST, Scenario())
    assert result.status == CoverageStatus.ACTIVE
    assert result.is_dependent is True
    assert (result.member_id, result.trace, result.group_number) == (
        "11122333301",
        "chk-000123",
        "G100",
    )
    assert result.payer_corrected_data is False


def test_271_dependent_not_found() -> None:
    (result,) = answer(DEPENDENT_REQUEST, Scenario(aaa=(("2100D", "67", "C"),)))
    assert result.is_dependent is True
    assert [(a.loop, a.code, a.action) for a in result.aaa] == [
        ("2100D", "67", AaaAction.FIX_PATIENT_DATA)
    ]


@pytest.mark.parametrize("request_", [REQUEST, DEPENDENT_REQUEST])
def test_271_corrected_data(request_: EligibilityRequest) -> None:
    (result,) = answer(request_, Scenario(corrected_data=True))
    assert result.payer_corrected_data is True
    assert result.status == CoverageStatus.ACTIVE


def test_271_other_payer() -> None:
    (result,) = answer(REQUEST, Scenario(other_payer="MEDICARE", other_payer_code="CMS01"))
    assert result.other_payers == (
        Entity(role="PRP", name="MEDICARE", id_qualifier="PI", identifier="CMS01"),
    )


def test_271_primary_care_provider() -> None:
    (result,) = answer(REQUEST, Scenario(pcp_npi="1111111112", pcp_name="Family Care"))
    assert result.pcp == Entity(
        role="P3", name="Family Care", id_qualifier="XX", identifier="1111111112"
    )


@pytest.mark.parametrize("service_type", ["30", "98"])
def test_271_authorization_required_on_the_visit_service_type(service_type: str) -> None:
    request = dataclasses.replace(REQUEST, service_type=service_type)
    (result,) = answer(request, Scenario(auth_required=True))
    (visit,) = [b for b in result.benefits if b.code == "1" and b.service_types == (service_type,)]
    assert visit.authorization_required is True
    assert visit.messages == ("PRIOR AUTHORIZATION REQUIRED",)
    (plain,) = answer(request, Scenario())
    assert all(b.authorization_required is None for b in plain.benefits)


def test_271_refuses_an_unknown_aaa_loop() -> None:
    with pytest.raises(X12Error, match="AAA loop"):
        build_271(REQUEST, interchange_control=1, scenario=Scenario(aaa=(("2110C", "42", "Y"),)))
    with pytest.raises(X12Error, match="AAA loop"):
        build_271(REQUEST, interchange_control=1, scenario=Scenario(aaa=(("2100D", "67", "C"),)))


def test_271_envelope() -> None:
    text = build_271(REQUEST, interchange_control=77, scenario=Scenario(), when=WHEN)
    assert len(text[: text.index("~") + 1]) == 106
    assert segment(text, "GS")[1] == "HB"
    assert segment(text, "ST") == ["ST", "271", "0077", "005010X279A1"]
    assert segment(text, "BHT")[1:3] == ["0022", "11"]
    assert segment(text, "TRN", "2")[2] == "chk-000123"
    segments = tokenize(text)[1]
    assert segments[-3] == ["SE", str(len(segments) - 4), "0077"]
