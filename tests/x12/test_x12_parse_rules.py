"""parse_271's rules, each pinned with a small hand-written 271."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from integrations.x12 import X12Error, parse_271
from office.eligibility.types import CoverageStatus, EligibilityResult

ISA = (
    "ISA*00*          *00*          *ZZ*PAYER          *ZZ*OFFICEFLOWS    "
    "*240301*0930*^*00501*000000001*0*P*:~"
)
SOURCE = ["HL*1**20*1", "NM1*PR*2*PAYER*****PI*P1", "HL*2*1*21*1", "NM1*1P*2*CLINIC*****XX*1"]
SUBSCRIBER = ["HL*3*2*22*0", "TRN*2*T1*9OFFICEFLO", "NM1*IL*1*DOE*JANE****MI*M1"]


def transaction(*segments: str, control: str = "0001") -> str:
    body = [f"ST*271*{control}*005010X279A1", "BHT*0022*11*R*20240301*0930", *segments]
    body.append(f"SE*{len(body) + 1}*{control}")
    return "~".join(body) + "~"


def interchange(*transactions: str) -> str:
    groups = "".join(
        f"GS*HB*P*O*20240301*0930*{i}*X*005010X279A1~{t}GE*1*{i}~"
        for i, t in enumerate(transactions, 1)
    )
    return ISA + groups + "IEA*1*000000001~"


def patient(*benefit_segments: str, loop: list[str] | None = None) -> EligibilityResult:
    (result,) = parse_271(
        interchange(transaction(*SOURCE, *(loop or SUBSCRIBER), *benefit_segments))
    )
    return result


def test_every_transaction_of_every_group_in_file_order() -> None:
    first = transaction(*SOURCE, *SUBSCRIBER, "EB*1**30**PLAN A")
    second = transaction(
        *SOURCE,
        "HL*3*2*22*0",
        "TRN*2*T2*9OFFICEFLO",
        "NM1*IL*1*ROE*RICH****MI*M2",
        "EB*6**30",
        control="0002",
    )
    third = transaction("HL*1**20*0", "AAA*Y**42*Y", "NM1*PR*2*PAYER*****PI*P1", control="0003")
    results = parse_271(interchange(first + second, third))
    assert [(r.trace, r.member_id, r.status) for r in results] == [
        ("T1", "M1", CoverageStatus.ACTIVE),
        ("T2", "M2", CoverageStatus.INACTIVE),
        (None, None, CoverageStatus.UNVERIFIED),
    ]


def test_transaction_level_aaa_attach_to_every_patient_of_that_transaction_only() -> None:
    rejected = transaction(
        "HL*1**20*1",
        "NM1*PR*2*PAYER*****PI*P1",
        "HL*2*1*21*1",
        "NM1*1P*2*CLINIC*****XX*1",
        "AAA*N**43*C",
        *SUBSCRIBER,
        "EB*1**30",
    )
    clean = transaction(*SOURCE, *SUBSCRIBER, "EB*1**30", control="0002")
    first, second = parse_271(interchange(rejected + clean))
    assert first.status == CoverageStatus.UNVERIFIED
    assert [(a.loop, a.code) for a in first.aaa] == [("2100B", "43")]
    assert (second.status, second.aaa) == (CoverageStatus.ACTIVE, ())


@pytest.mark.parametrize(
    ("benefits", "status"),
    [
        (["EB*6**30", "EB*1**30"], CoverageStatus.ACTIVE),
        (["EB*1**30", "EB*6**30"], CoverageStatus.ACTIVE),
        (["EB*5**30"], CoverageStatus.ACTIVE),
        (["EB*6**30"], CoverageStatus.INACTIVE),
        (["EB*8"], CoverageStatus.INACTIVE),
        (["EB*B**98***27*20"], CoverageStatus.UNVERIFIED),  # no status EB at all
        (["EB*1**30", "AAA*N**70*C"], CoverageStatus.UNVERIFIED),
        (["EB*6**30", "AAA*N**70*C"], CoverageStatus.UNVERIFIED),  # never inactive with AAA
    ],
)
def test_status_rules(benefits: list[str], status: CoverageStatus) -> None:
    assert patient(*benefits).status == status


def test_status_eb_prefers_the_requested_then_the_30_service_type() -> None:
    segments = ["EB*1**1**GENERAL*", "EB*1**30*PR*PLAN 30", "EB*1**98*HM*PLAN 98"]
    text = interchange(transaction(*SOURCE, *SUBSCRIBER, *segments))
    (default,) = parse_271(text)
    (visit,) = parse_271(text, service_type="98")
    assert (default.plan_name, default.insurance_type) == ("PLAN 30", "PR")
    assert (visit.plan_name, visit.insurance_type) == ("PLAN 98", "HM")


def test_plan_name_falls_back_to_sibling_eb_then_ref_18() -> None:
    assert patient("EB*1**30", "EB*1**98**SIBLING PLAN").plan_name == "SIBLING PLAN"
    loop = [*SUBSCRIBER, "REF*18*P123*GOLD DESCRIPTION", "REF*6P*G9"]
    result = patient("EB*1**30", loop=loop)
    assert (result.plan_name, result.group_number) == ("GOLD DESCRIPTION", "G9")
    assert patient("EB*1**30", loop=[*SUBSCRIBER, "REF*18*P123"]).plan_name == "P123"


def test_patient_dates() -> None:
    loop = [
        *SUBSCRIBER,
        "DTP*346*D8*20240101",
        "DTP*347*D8*20241231",
        "DTP*356*D8*20230601",
        "DTP*357*D8*20250531",
    ]
    result = patient("EB*1**30", loop=loop)
    assert (result.plan_begin, result.plan_end) == (date(2024, 1, 1), date(2024, 12, 31))
    assert (result.eligibility_begin, result.eligibility_end) == (
        date(2023, 6, 1),
        date(2025, 5, 31),
    )


def test_patient_dates_fall_back_to_291_and_307_ranges() -> None:
    plan = patient("EB*1**30", loop=[*SUBSCRIBER, "DTP*291*RD8*20240101-20240630"])
    assert (plan.plan_begin, plan.plan_end) == (date(2024, 1, 1), date(2024, 6, 30))
    assert plan.eligibility_begin is None
    eligibility = patient("EB*1**30", loop=[*SUBSCRIBER, "DTP*307*RD8*20240201-20240229"])
    assert (eligibility.eligibility_begin, eligibility.eligibility_end) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
    )
    assert (eligibility.plan_begin, eligibility.plan_end) == (date(2024, 2, 1), date(2024, 2, 29))
    single = patient("EB*1**30", loop=[*SUBSCRIBER, "DTP*307*D8*20240201"])
    assert (single.plan_begin, single.eligibility_begin) == (None, None)


def test_benefit_fields() -> None:
    result = patient(
        "EB*A*FAM*98^33*PR*PLAN*27*12.50*.2*VS*3*U*U*HC:99213",
        "MSG*FIRST",
        "MSG*SECOND",
        "DTP*348*D8*20240115",
        "DTP*292*RD8*20240101-20241231",
        "DTP*349*D8*20241301",
        "HSD*VS*35",
        "III*ZZ*11",
        "REF*6P*X",
    )
    (benefit,) = result.benefits
    assert benefit.code == "A"
    assert (benefit.coverage_level, benefit.service_types) == ("FAM", ("98", "33"))
    assert (benefit.insurance_type, benefit.plan_name, benefit.time_period) == ("PR", "PLAN", "27")
    assert (benefit.amount, benefit.percent) == (Decimal("12.50"), Decimal("0.2"))
    assert (benefit.quantity_qualifier, benefit.quantity) == ("VS", Decimal("3"))
    assert (benefit.authorization_required, benefit.network) == (None, "unknown")
    assert benefit.procedure == "HC:99213"
    assert benefit.messages == ("FIRST", "SECOND")
    # The invalid 349 date is dropped rather than guessed.
    assert benefit.dates == {"348": "2024-01-15", "292": "2024-01-01/2024-12-31"}


@pytest.mark.parametrize(
    ("eb11", "eb12", "authorization", "network"),
    [
        ("Y", "Y", True, "in"),
        ("N", "N", False, "out"),
        ("", "W", None, "both"),
        ("U", "", None, "unknown"),
    ],
)
def test_eb11_and_eb12_mapping(
    eb11: str, eb12: str, authorization: bool | None, network: str
) -> None:
    (benefit,) = patient(f"EB*1**30********{eb11}*{eb12}").benefits
    assert (benefit.authorization_required, benefit.network) == (authorization, network)


@pytest.mark.parametrize(
    ("raw", "expected"), [(".2", "0.2"), ("1.0", "1.0"), ("-5", "-5"), ("7.", "7")]
)
def test_numbers(raw: str, expected: str) -> None:
    (benefit,) = patient(f"EB*B**98***27*{raw}").benefits
    assert benefit.amount == Decimal(expected)


@pytest.mark.parametrize("raw", ["1E5", "abc", "NaN", "Infinity", "1.2.3", "--1", "."])
def test_non_numbers_become_none(raw: str) -> None:
    (benefit,) = patient(f"EB*B**98***27*{raw}").benefits
    assert benefit.amount is None


def test_trace_is_the_trn_2_not_the_payers_trn_1() -> None:
    loop = ["HL*3*2*22*0", "TRN*1*PAYER1*9PAYER", "TRN*2*OURS*9OFFICEFLO", "TRN*2*LATER*9X"]
    result = patient("EB*1**30", loop=[*loop, "NM1*IL*1*DOE*JANE****MI*M1"])
    assert result.trace == "OURS"


def test_dependent_member_id_prefers_its_own_nm1_03_id() -> None:
    loop = ["HL*3*2*22*1", "NM1*IL*1*DOE*JANE****MI*M1", "HL*4*3*23*0", "NM1*03*1*DOE*KID****MI*D1"]
    result = patient("EB*1**30", loop=loop)
    assert (result.is_dependent, result.member_id, result.trace) == (True, "D1", None)


def test_subscriber_rejection_carries_over_to_its_dependent() -> None:
    loop = [*SUBSCRIBER[:-1], "NM1*IL*1*DOE*JANE****MI*M1", "AAA*N**75*C"]
    loop[0] = "HL*3*2*22*1"
    loop += ["HL*4*3*23*0", "NM1*03*1*DOE*KID", "EB*1**30"]
    subscriber, dependent = parse_271(interchange(transaction(*SOURCE, *loop)))
    assert [a.code for a in subscriber.aaa] == ["75"]
    assert [a.code for a in dependent.aaa] == ["75"]
    assert dependent.status == CoverageStatus.UNVERIFIED


def test_a_patient_loop_without_benefits_or_aaa_still_answers_unverified() -> None:
    (result,) = parse_271(interchange(transaction(*SOURCE, *SUBSCRIBER, "DTP*346*D8*20240101")))
    assert (result.status, result.member_id, result.trace) == (
        CoverageStatus.UNVERIFIED,
        "M1",
        "T1",
    )


def test_other_payers_come_from_eb_r_payer_entities_only() -> None:
    result = patient(
        "EB*R**30*OT",
        "LS*2120",
        "NM1*PRP*2*OTHER PAYER*****PI*OP1",
        "NM1*IL*1*HOLDER*POLICY****MI*X9",
        "LE*2120",
        "EB*W",
        "LS*2120",
        "NM1*PR*2*DATA SOURCE",
        "LE*2120",
    )
    assert [(e.role, e.name, e.identifier) for e in result.other_payers] == [
        ("PRP", "OTHER PAYER", "OP1")
    ]


def test_bytes_text_bom_and_crlf_give_the_same_answer() -> None:
    text = interchange(transaction(*SOURCE, *SUBSCRIBER, "EB*1**30**PLAN"))
    expected = parse_271(text)
    assert parse_271(text.encode()) == expected
    assert parse_271("\ufeff" + text) == expected
    assert parse_271(b"\xef\xbb\xbf  \r\n" + text.replace("~", "~\r\n    ").encode()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not x12 at all", "no ISA header"),
        (ISA + "GS*HB*P*O*20240301*0930*1*X*005010X279A1~GE*0*1~IEA*1*000000001~", "no ST"),
        (interchange(transaction("EB*1**30")), "segment 5: EB outside a known HL loop"),
        (
            interchange(transaction("HL*1**20*1", "EB*1**30")),
            "segment 6: EB without a patient loop",
        ),
        (interchange(transaction("AAA*Y**42*Y")), "segment 5: AAA outside a known HL loop"),
    ],
)
def test_structural_errors_name_the_segment_not_its_values(text: str, message: str) -> None:
    with pytest.raises(X12Error, match=message):
        parse_271(text)


def test_a_foreign_transaction_set_id_is_not_echoed() -> None:
    text = interchange(transaction(*SOURCE).replace("ST*271", "ST*JANEDOE"))
    with pytest.raises(X12Error) as info:
        parse_271(text)
    assert "JANEDOE" not in str(info.value)
    assert "is not a 271" in str(info.value)
