"""Every public 271 sample parses to what its SOURCES.md row says it exercises."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.x12 import X12Error, parse_271, results_to_json
from office.eligibility.types import AaaAction, Benefit, CoverageStatus, EligibilityResult, Entity

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "x12"
ACTIVE, INACTIVE, UNVERIFIED = (
    CoverageStatus.ACTIVE,
    CoverageStatus.INACTIVE,
    CoverageStatus.UNVERIFIED,
)
TR3_STCS = ("1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC")

# File -> statuses of its results, in file order.
STATUSES: dict[str, list[CoverageStatus]] = {
    "LinuxForHealth__x12__subscriber-health-benefit-check.271": [ACTIVE],
    "LinuxForHealth__x12__dependent-health-benefit-check.271": [ACTIVE],
    "LinuxForHealth__x12__subscriber-health-benefit-check-error.271": [UNVERIFIED],
    "Inteligenz__X12Parser__Example_3_1_2.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__Example_ErrorWithoutBenefitInfo.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__ValidationForSource.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__ValidationForReceiverName.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__ValidationForSubscriberName.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__ValidationForDependentBenefitInfo.txt": [UNVERIFIED],
    "Inteligenz__X12Parser__ValidationOnAll.txt": [UNVERIFIED, UNVERIFIED],
    "Inteligenz__X12Parser__Example3_CMS_HETS.txt": [ACTIVE],
    "Inteligenz__X12Parser__FromMunawarAbad.txt": [ACTIVE],
    "Inteligenz__X12Parser__From_tcplex.txt": [INACTIVE],
    "Inteligenz__X12Parser__Example2_TMHP.txt": [ACTIVE],
    "Inteligenz__X12Parser__Example1_DHHS.txt": [UNVERIFIED],
    "albmarin__badX12__X279-response-to-generic-request-by-physician-for-patient-(dependent)-eligibility.edi": [  # noqa: E501
        ACTIVE
    ],
    "slott56__TigerShark__271-example.txt": [UNVERIFIED],
    "slott56__TigerShark__271-example-dependent-rejection.txt": [UNVERIFIED],
    "slott56__TigerShark__271-dependent-benefits.txt": [ACTIVE],
    "slott56__TigerShark__271-related-entity.txt": [ACTIVE],
    "slott56__TigerShark__271-example-2.txt": [ACTIVE],
    "zentist__TigerShark__271-example-3.txt": [ACTIVE],
    "zentist__TigerShark__271-example-in-out-network.txt": [ACTIVE],
}
REQUESTS_270 = [
    "LinuxForHealth__x12__subscriber-health-benefit-check.270",
    "LinuxForHealth__x12__dependent-health-benefit-check.270",
    "Inteligenz__X12Parser__Example1_IG_0x1D.txt",
    "albmarin__badX12__X279-generic-request-by-clinic-for-patient-(subscriber)-eligibility.edi",
]


def load(name: str) -> list[EligibilityResult]:
    return parse_271((SAMPLES / name).read_bytes())


def only(name: str) -> EligibilityResult:
    results = load(name)
    assert len(results) == 1
    return results[0]


def find(result: EligibilityResult, code: str, **fields: object) -> list[Benefit]:
    return [
        b
        for b in result.benefits
        if b.code == code and all(getattr(b, key) == value for key, value in fields.items())
    ]


def aaa_summary(result: EligibilityResult) -> list[tuple[str, str, str | None]]:
    return [(a.loop, a.code, a.followup) for a in result.aaa]


def test_the_sample_table_covers_every_271_and_270_on_disk() -> None:
    on_disk = {p.name for p in SAMPLES.iterdir() if p.suffix != ".md"}
    assert on_disk == set(STATUSES) | set(REQUESTS_270)
    assert len(STATUSES) == 23
    assert len(REQUESTS_270) == 4


@pytest.mark.parametrize(("name", "expected"), sorted(STATUSES.items()))
def test_every_271_sample_parses_to_its_statuses(name: str, expected: list[str]) -> None:
    results = load(name)
    assert [r.status for r in results] == expected
    # Parsing is deterministic and JSON-ready.
    assert results_to_json(results) == results_to_json(load(name))


@pytest.mark.parametrize("name", REQUESTS_270)
def test_270_samples_are_refused_as_271(name: str) -> None:
    with pytest.raises(X12Error, match="270 is not a 271"):
        load(name)


def test_lfh_subscriber_tr3_example() -> None:
    r = only("LinuxForHealth__x12__subscriber-health-benefit-check.271")
    assert r.status == ACTIVE
    assert (r.member_id, r.trace, r.payer_code) == ("123456789", "93175-012547", "841610001")
    assert r.plan_name == "GOLD 123 PLAN"
    assert r.plan_begin == date(2006, 1, 1)
    assert r.is_dependent is False
    assert r.pcp == Entity(role="P3", name="JONES, MARCUS", id_qualifier="SV", identifier="0202034")
    assert find(r, "1", service_types=TR3_STCS)
    copays = find(r, "B", service_types=TR3_STCS, time_period="27")
    assert [(b.amount, b.network) for b in copays] == [
        (Decimal("10"), "in"),
        (Decimal("30"), "out"),
    ]
    assert r.aaa == ()


def test_lfh_dependent_benefits_sit_in_2000d() -> None:
    r = only("LinuxForHealth__x12__dependent-health-benefit-check.271")
    assert r.status == ACTIVE
    assert r.is_dependent is True
    assert r.member_id == "123456789"  # the subscriber's NM1*IL; NM1*03 carries no id
    assert r.trace == "93175-012547"
    assert r.plan_name == "GOLD 123 PLAN"
    assert r.plan_begin == date(2006, 1, 1)
    assert r.pcp is not None
    assert r.pcp.identifier == "0202034"
    assert [b.amount for b in find(r, "B")] == [Decimal("10.00"), Decimal("30.00")]


def test_lfh_provider_ineligible_has_no_patient_loop() -> None:
    r = only("LinuxForHealth__x12__subscriber-health-benefit-check-error.271")
    assert r.status == UNVERIFIED
    assert r.member_id is None
    assert r.benefits == ()
    assert aaa_summary(r) == [("2100B", "50", "N")]
    assert r.aaa[0].valid_request is True
    assert r.aaa[0].action == AaaAction.FIX_PROVIDER_SETUP


def test_example_3_1_2_aaa_at_every_level_and_rep_equal_to_comp() -> None:
    r = only("Inteligenz__X12Parser__Example_3_1_2.txt")
    assert r.status == UNVERIFIED
    assert aaa_summary(r) == [
        ("2000A", "80", "P"),
        ("2000A", "79", "N"),
        ("2100A", "79", "N"),
        ("2100A", "80", "P"),
        ("2100B", "41", "C"),
        ("2100B", "41", "C"),
        ("2100C", "42", "Y"),
        ("2110C", "51", "N"),
        ("2110C", "60", "W"),
    ]
    plan = find(r, "1", service_types=("30",))[0]
    assert [(a.code, a.followup) for a in plan.aaa] == [("51", "N"), ("60", "W")]
    assert plan.entities[0].role == "PR"
    assert plan.entities[0].name == "COVENTRY HEALTH AND LIFE INSURANCE"
    lifetime = find(r, "F", time_period="32")[0]
    assert (lifetime.authorization_required, lifetime.network) == (True, "out")
    # ISA11 == ISA16 == "^": EB03 still splits into its ten service types.
    assert find(r, "1", service_types=TR3_STCS)
    assert r.pcp is not None
    assert r.pcp.name == "JONES, MARCUS"


def test_error_without_benefit_info_is_aaa_only() -> None:
    r = only("Inteligenz__X12Parser__Example_ErrorWithoutBenefitInfo.txt")
    assert r.status == UNVERIFIED
    assert r.benefits == ()
    assert r.member_id == "123456789"
    assert {a.loop for a in r.aaa} == {"2000A", "2100A", "2100B", "2100C"}
    assert ("2100C", "42", "Y") in aaa_summary(r)


def test_validation_for_source_payer_unable_to_respond() -> None:
    r = only("Inteligenz__X12Parser__ValidationForSource.txt")
    assert r.status == UNVERIFIED
    assert r.member_id is None
    assert r.payer_code is None
    assert aaa_summary(r) == [("2000A", "42", "Y")]
    assert r.aaa[0].action == AaaAction.RETRY_LATER


def test_validation_for_receiver_name_is_provider_setup() -> None:
    r = only("Inteligenz__X12Parser__ValidationForReceiverName.txt")
    assert r.member_id is None
    assert aaa_summary(r) == [
        ("2100B", "43", "C"),
        ("2100B", "44", "C"),
        ("2100B", "45", "C"),
        ("2100B", "47", "C"),
    ]
    assert {a.action for a in r.aaa} == {AaaAction.FIX_PROVIDER_SETUP}


def test_validation_for_subscriber_name_is_patient_data() -> None:
    r = only("Inteligenz__X12Parser__ValidationForSubscriberName.txt")
    assert r.member_id == "123456789"
    assert r.trace == "93175-012547"
    assert aaa_summary(r) == [("2100C", "72", "C"), ("2100C", "75", "C")]
    assert {a.action for a in r.aaa} == {AaaAction.FIX_PATIENT_DATA}


def test_validation_for_dependent_benefit_info_aaa_after_eb() -> None:
    r = only("Inteligenz__X12Parser__ValidationForDependentBenefitInfo.txt")
    assert r.status == UNVERIFIED  # an EB*1 is there, but any AAA means unverified
    assert r.is_dependent is True
    assert r.member_id == "123456789"
    assert r.plan_name == "bronze 123 plan"
    assert aaa_summary(r) == [("2110D", "70", "C")]
    assert r.benefits[0].aaa == r.aaa


def test_validation_on_all_subscriber_and_dependent() -> None:
    subscriber, dependent = load("Inteligenz__X12Parser__ValidationOnAll.txt")
    transaction_level = [
        ("2000A", "79", "N"),
        ("2000A", "42", "C"),
        ("2100A", "79", "N"),
        ("2100A", "80", "P"),
        ("2100B", "41", "C"),
        ("2100B", "41", "C"),
    ]
    assert subscriber.is_dependent is False
    assert aaa_summary(subscriber) == [*transaction_level, ("2100C", "42", "W")]
    assert subscriber.aaa[-1].action == AaaAction.RETRY_LATER
    assert dependent.is_dependent is True
    assert aaa_summary(dependent) == [
        *transaction_level,
        ("2100C", "42", "W"),
        ("2100D", "35", "N"),
        ("2110D", "52", "N"),
        ("2110D", "60", "W"),
    ]
    assert dependent.plan_name == "bronze 123 plan"


def test_cms_hets_medicare_layout() -> None:
    r = only("Inteligenz__X12Parser__Example3_CMS_HETS.txt")
    assert r.status == ACTIVE
    assert (r.member_id, r.trace, r.payer_code) == ("HICN", "TRACKNUM", "CMS")
    assert r.insurance_type == "MA"
    assert r.payer_corrected_data is True
    assert [b.insurance_type for b in find(r, "1")] == ["MA", "MB"]
    assert find(r, "1")[0].dates == {"307": "1985-04-01"}
    part_a = find(r, "C", service_types=("47",), insurance_type="MA", time_period="29")
    assert part_a[0].amount == Decimal("992")
    reserve = find(r, "K")[0]
    assert (reserve.time_period, reserve.quantity_qualifier, reserve.quantity) == (
        "33",
        "LA",
        Decimal("60"),
    )
    snf = find(r, "F", service_types=("AG",))[0]
    assert (snf.quantity_qualifier, snf.quantity) == ("DY", Decimal("20"))
    preventive = find(r, "D", procedure="HC:90669")[0]
    assert preventive.dates == {"348": "2009-04-06"}
    advantage = find(r, "R", insurance_type="HM")[0]
    assert advantage.entities[0].role == "PRP"
    assert [e.role for e in r.other_payers] == ["PRP", "PRP", "PRP"]
    assert find(r, "6")[0].dates == {"307": "2007-09-01/2007-09-30"}
    assert find(r, "X", service_types=("42",))[0].messages[0] == "HHEH Start Date"


def test_munawar_abad_cms_preventive_services() -> None:
    r = only("Inteligenz__X12Parser__FromMunawarAbad.txt")
    assert r.status == ACTIVE
    assert r.member_id == "999999999X"
    assert r.insurance_type == "MA"
    procedures = [b.procedure for b in find(r, "D")]
    assert len(procedures) == 31
    assert "HC:G0203" in procedures
    assert "XX:99999" in procedures
    part_d = find(r, "R", service_types=("88",))[0]
    assert part_d.entities[0].role == "PR"
    assert [e.role for e in r.other_payers] == ["PR", "PRP"]
    assert find(r, "C", service_types=("96",))[0].dates == {"292": "2011-01-01/2011-12-31"}


def test_tcplex_inactive_with_a_short_isa() -> None:
    r = only("Inteligenz__X12Parser__From_tcplex.txt")
    assert r.status == INACTIVE
    assert r.is_dependent is True
    assert r.member_id == "XXX999X99999"  # NM1*03 carries its own id
    assert r.trace is None  # only the payer's TRN*1
    assert r.group_number == "999999X99X"
    assert (r.eligibility_begin, r.eligibility_end) == (date(2011, 12, 17), date(2011, 12, 17))
    assert [b.code for b in r.benefits] == ["6", "P"]
    assert r.benefits[0].service_types == ("30",)
    assert len(r.benefits[1].messages) == 1


def test_tmhp_medicaid_corrected_data_and_other_payer() -> None:
    r = only("Inteligenz__X12Parser__Example2_TMHP.txt")
    assert r.status == ACTIVE
    assert r.payer_corrected_data is True
    assert r.trace == "109834652831"  # the first TRN*2; the TRN*1 is the payer's
    assert r.member_id == "444115555"
    assert r.plan_name == "PLANABBVDE"
    assert r.other_payers == (Entity(role="PR", name="INCOMPANYNAME"),)
    first_other = find(r, "R")[0]
    assert first_other.dates == {"193": "2000-05-01", "194": "2000-06-01"}


def test_dhhs_medicaid_template_non_standard_aaa() -> None:
    r = only("Inteligenz__X12Parser__Example1_DHHS.txt")
    assert r.status == UNVERIFIED  # EB*6 and EB*1 are both there, and AAA RC rejects
    assert [(a.loop, a.code) for a in r.aaa] == [("2000A", "RC"), ("2100B", "RC"), ("2100C", "RC")]
    assert {a.action for a in r.aaa} == {AaaAction.HUMAN_REVIEW}
    assert [b.code for b in r.benefits[:2]] == ["6", "1"]
    assert find(r, "R", insurance_type="QM")[0].plan_name == "QMB"
    visits = find(r, "D", service_types=("44",))[0]
    assert (visits.quantity_qualifier, visits.quantity) == ("VS", Decimal("999"))
    pcp_benefit = find(r, "L")[0]
    assert pcp_benefit.messages == ("RSP Message Text",)
    assert r.pcp is not None
    assert r.pcp.role == "1P"


def test_badx12_dependent_with_gt_repetition_and_misplaced_ls() -> None:
    r = only(
        "albmarin__badX12__X279-response-to-generic-request-by-physician-for-patient-"
        "(dependent)-eligibility.edi"
    )
    assert r.status == ACTIVE
    assert r.is_dependent is True
    assert r.member_id == "123456789"
    assert find(r, "B", service_types=TR3_STCS, network="in")[0].amount == Decimal("10")
    # The LS..LE follows the last EB*B, not the EB*L; the P3 is still the PCP.
    assert find(r, "L")[0].entities == ()
    assert r.pcp is not None
    assert r.pcp.identifier == "0202034"


def test_slott56_zirmed_reject_fix_data() -> None:
    r = only("slott56__TigerShark__271-example.txt")
    assert r.status == UNVERIFIED
    assert r.member_id == "R11111111"
    assert r.trace == "333333333"  # the only TRN*2 among three TRNs
    assert aaa_summary(r) == [
        ("2100C", "72", "C"),
        ("2100C", "73", "C"),
        ("2100C", "73", "C"),
        ("2100C", "58", "C"),
    ]
    assert all(not a.valid_request for a in r.aaa)
    assert {a.action for a in r.aaa} == {AaaAction.FIX_PATIENT_DATA}


def test_slott56_dependent_rejection_reports_the_subscriber_only() -> None:
    r = only("slott56__TigerShark__271-example-dependent-rejection.txt")
    assert r.is_dependent is False
    assert r.member_id == "R11111111"
    assert r.payer_code == "10319"
    assert aaa_summary(r) == [("2100C", "72", "N")]


def test_slott56_dependent_benefits_deductibles() -> None:
    r = only("slott56__TigerShark__271-dependent-benefits.txt")
    assert r.status == ACTIVE
    assert r.is_dependent is True
    assert (r.plan_name, r.insurance_type) == ("Aetna Choice POS II", "PS")
    assert r.group_number == "11111"  # from the subscriber loop
    assert r.member_id == "111111111"
    assert r.plan_begin == date(2011, 8, 1)
    deductible = {(b.coverage_level, b.time_period): b.amount for b in find(r, "C")}
    assert deductible[("FAM", "23")] == Decimal("600")
    assert deductible[("FAM", "29")] == Decimal("186.89")
    assert deductible[("IND", "23")] == Decimal("200")
    assert deductible[("IND", "29")] == Decimal("78.8")
    assert [b.amount for b in find(r, "G", coverage_level="FAM")] == [Decimal("3000")] * 2
    assert find(r, "L")[0].messages == ("PCP SELECTION NOT REQUIRED",)
    assert r.pcp is None
    assert find(r, "A", network="out")[0].percent == Decimal("0.3")


def test_slott56_related_entity_hmo() -> None:
    r = only("slott56__TigerShark__271-related-entity.txt")
    assert r.status == ACTIVE
    assert (r.plan_name, r.insurance_type) == ("HMO CEDARS SINAI ONLY", "HM")
    assert r.benefits[0].coverage_level == "ESP"
    assert (r.plan_begin, r.plan_end) == (date(2012, 1, 1), date(9999, 12, 31))
    assert r.group_number == "55555G"
    oop = find(r, "G", coverage_level="FAM")
    assert [(b.time_period, b.amount) for b in oop[:2]] == [
        ("23", Decimal("1000")),
        ("29", Decimal("870")),
    ]
    assert [b.time_period for b in find(r, "B")] == ["26", "27", "27"]
    assert find(r, "I")[0].network == "out"
    employer = find(r, "L")[0]
    assert employer.dates == {"295": "2011-07-01/9999-12-31"}
    assert employer.entities[0].role == "36"
    assert find(r, "P")[0].messages[0].startswith("UNLESS OTHERWISE REQUIRED")


def test_slott56_example_2_uhc_managed_indemnity() -> None:
    r = only("slott56__TigerShark__271-example-2.txt")
    assert r.status == ACTIVE
    assert (r.plan_name, r.insurance_type) == ("MANAGED INDEMNITY", "C1")
    assert r.payer_corrected_data is True
    assert r.group_number == "00000"
    assert [b.service_types for b in find(r, "I")] == [("35",), ("92",), ("91",), ("88",)]
    assert find(r, "A", service_types=("AE",))[0].percent == Decimal("0.2")
    assert find(r, "A", service_types=("AL",))[0].percent == Decimal("1.0")
    remaining = find(r, "C", coverage_level="IND", time_period="29", network="in")
    assert remaining[0].amount == Decimal("0")
    assert r.other_payers == (Entity(role="PR", name="MEDICARE"),)


def test_zentist_example_3_curly_repetition() -> None:
    r = only("zentist__TigerShark__271-example-3.txt")
    assert r.status == ACTIVE
    assert (r.plan_name, r.insurance_type) == ("Open Access Elect Choice", "EP")
    assert (r.member_id, r.trace, r.group_number) == ("1234567899", "434343434", "030030001000120")
    assert r.plan_begin == date(2016, 2, 1)
    assert r.eligibility_begin == date(2014, 12, 8)
    assert r.payer_corrected_data is True
    assert find(r, "I", service_types=("86", "UC"))
    assert find(
        r, "1", service_types=("1", "33", "47", "48", "50", "86", "98", "UC", "AL", "MH", "88")
    )
    copay = find(r, "B", service_types=("33",))[0]
    assert (copay.amount, copay.network) == (Decimal("20"), "in")
    assert find(r, "A", service_types=("98",))[0].percent == Decimal("0.1")
    assert find(r, "G", time_period="29")[0].amount == Decimal("2100")
    assert find(r, "F", network="in")[0].messages == ("PLAN REQUIRES PRECERT",)
    assert find(r, "III") == []  # III*ZZ*11 belongs to the EB*A before it, not a benefit


def test_zentist_in_out_network_with_a_lost_terminator() -> None:
    r = only("zentist__TigerShark__271-example-in-out-network.txt")
    assert r.status == ACTIVE
    copays = [(b.amount, b.network) for b in find(r, "B", service_types=("98",))]
    assert copays == [(Decimal("50"), "in"), (Decimal("100"), "out")]
    in_remaining = find(r, "C", time_period="29", network="in")[0]
    assert in_remaining.amount == Decimal("0")
    assert find(r, "A", service_types=("50",))[0].network == "both"
    # "EB|A|IND|52|||||0.1" lost its "~"; the next line is still read as its own EB*I.
    assert find(r, "A", service_types=("52",))[0].percent == Decimal("0.1")
    assert [b.code for b in r.benefits[-2:]] == ["A", "I"]
    assert r.benefits[-1].network == "out"
