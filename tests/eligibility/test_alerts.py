"""The alert table: each kind fires on its trigger, and a near miss does not fire it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from office.eligibility.alerts import (
    ROLES,
    AlertContext,
    AlertKind,
    alerts_for,
    deductible_remaining,
    failure_alert,
    registration_alert,
    visit_copay,
)
from office.eligibility.codes import AAA_REASONS, classify_aaa
from office.eligibility.types import (
    Aaa,
    Benefit,
    CoverageStatus,
    EligibilityResult,
    Entity,
)

TODAY = date(2026, 12, 1)
DOS = date(2026, 12, 3)
RENDERING = "1234567893"
OTHER_NPI = "1999999992"

CONTEXT = AlertContext(
    date_of_service=DOS,
    service_type="98",
    today=TODAY,
    appointment_id=123,
    patient_id=45,
    rendering_npi=RENDERING,
    copay_on_file=Decimal("25"),
    deductible_threshold=Decimal("500"),
)


def aaa(loop: str, code: str, followup: str | None = "C") -> Aaa:
    return Aaa(loop, code, followup, valid_request=False, action=classify_aaa(loop, code))


def active(*benefits: Benefit, **fields: object) -> EligibilityResult:
    base = EligibilityResult(
        status=CoverageStatus.ACTIVE,
        member_id="MEMBER-SECRET-1",
        insurance_type="PR",
        plan_begin=date(2026, 1, 1),
        plan_end=date(2027, 6, 30),
        benefits=(Benefit("1", "IND", ("30",), "PR"), *benefits),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def unverified(*items: Aaa) -> EligibilityResult:
    return EligibilityResult(status=CoverageStatus.UNVERIFIED, aaa=items)


COPAY_25 = Benefit("B", "IND", ("98",), amount=Decimal("25"), time_period="27", network="in")
PCP_OTHER = Entity("P3", "CLINIC", "XX", OTHER_NPI)
PCP_SAME = Entity("P3", "CLINIC", "XX", RENDERING)

# (name, result, context, kind expected to fire)
FIRES = [
    ("inactive", EligibilityResult(status=CoverageStatus.INACTIVE), CONTEXT, "not_active"),
    ("plan ended", active(plan_end=DOS - timedelta(days=1)), CONTEXT, "not_active"),
    ("plan not begun", active(plan_begin=DOS + timedelta(days=1)), CONTEXT, "not_active"),
    ("eligibility ended", active(eligibility_end=date(2026, 12, 2)), CONTEXT, "not_active"),
    ("plan ends in 30 days", active(plan_end=TODAY + timedelta(days=30)), CONTEXT, "plan_ending"),
    ("AAA 72 C", unverified(aaa("2100C", "72")), CONTEXT, "fix_patient_data"),
    ("AAA 58 dependent", unverified(aaa("2100D", "58")), CONTEXT, "fix_patient_data"),
    ("AAA 43 provider", unverified(aaa("2100B", "43")), CONTEXT, "provider_setup"),
    ("AAA 79 payer", unverified(aaa("2100A", "79")), CONTEXT, "provider_setup"),
    (
        "42 after retries",
        unverified(aaa("2100A", "42", "R")),
        replace(CONTEXT, retries_exhausted=True),
        "unverified",
    ),
    ("no status EB", EligibilityResult(status=CoverageStatus.UNVERIFIED), CONTEXT, "unverified"),
    ("AAA 35 needs a person", unverified(aaa("2100C", "35")), CONTEXT, "unverified"),
    (
        "auth EB11",
        active(Benefit("1", "IND", ("98",), authorization_required=True)),
        CONTEXT,
        "authorization_required",
    ),
    (
        "auth MSG",
        active(Benefit("1", "IND", ("98",), messages=("PRECERTIFICATION REQUIRED",))),
        CONTEXT,
        "authorization_required",
    ),
    ("HMO other PCP", active(insurance_type="HM", pcp=PCP_OTHER), CONTEXT, "referral_needed"),
    ("EB*R", active(Benefit("R", "IND", ("30",))), CONTEXT, "coordination_of_benefits"),
    (
        "other payer entity",
        active(other_payers=(Entity("PRP", "OTHER PLAN"),)),
        CONTEXT,
        "coordination_of_benefits",
    ),
    (
        "Medicare secondary",
        active(Benefit("1", "IND", ("30",), "12")),
        CONTEXT,
        "coordination_of_benefits",
    ),
    ("INS04 25", active(payer_corrected_data=True), CONTEXT, "payer_corrected_data"),
    (
        "copay vs file",
        active(replace(COPAY_25, amount=Decimal("30"))),
        CONTEXT,
        "copay_changed",
    ),
    (
        "copay vs last check",
        active(COPAY_25),
        replace(CONTEXT, previous_copay=Decimal("20")),
        "copay_changed",
    ),
    (
        "deductible above",
        active(Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("500.01"))),
        CONTEXT,
        "high_deductible",
    ),
    ("AAA 76", unverified(aaa("2100C", "76")), CONTEXT, "ambiguous_match"),
    ("AAA 68 dependent", unverified(aaa("2100D", "68")), CONTEXT, "ambiguous_match"),
    ("EB*I visit", active(Benefit("I", "IND", ("98",))), CONTEXT, "service_not_covered"),
    (
        "no visits left",
        active(
            Benefit(
                "F", "IND", ("98",), time_period="29", quantity_qualifier="VS", quantity=Decimal(0)
            )
        ),
        CONTEXT,
        "service_not_covered",
    ),
]

# (name, result, context, kind that must not fire)
NEAR_MISSES = [
    ("active in dates", active(), CONTEXT, "not_active"),
    ("plan ends on the visit day", active(plan_end=DOS), CONTEXT, "not_active"),
    ("plan ends in 31 days", active(plan_end=TODAY + timedelta(days=31)), CONTEXT, "plan_ending"),
    (
        "AAA 42 in the patient loop",
        unverified(aaa("2100C", "42", "R")),
        CONTEXT,
        "fix_patient_data",
    ),
    ("AAA 72 patient, not provider", unverified(aaa("2100C", "72")), CONTEXT, "provider_setup"),
    ("AAA 76 is no data fix", unverified(aaa("2100C", "76")), CONTEXT, "fix_patient_data"),
    ("patient fix is enough", unverified(aaa("2100C", "72")), CONTEXT, "unverified"),
    ("active is verified", active(), replace(CONTEXT, retries_exhausted=True), "unverified"),
    (
        "auth on another service",
        active(Benefit("1", "IND", ("PT",), authorization_required=True)),
        CONTEXT,
        "authorization_required",
    ),
    (
        "auth explicitly not required",
        active(Benefit("1", "IND", ("98",), authorization_required=False)),
        CONTEXT,
        "authorization_required",
    ),
    (
        "HMO, PCP is rendering",
        active(insurance_type="HM", pcp=PCP_SAME),
        CONTEXT,
        "referral_needed",
    ),
    ("PPO, other PCP", active(insurance_type="PR", pcp=PCP_OTHER), CONTEXT, "referral_needed"),
    (
        "HMO, rendering unknown",
        active(insurance_type="HM", pcp=PCP_OTHER),
        replace(CONTEXT, rendering_npi=None),
        "referral_needed",
    ),
    ("no other payer", active(), CONTEXT, "coordination_of_benefits"),
    ("INS04 other", active(), CONTEXT, "payer_corrected_data"),
    ("copay same as file", active(COPAY_25), CONTEXT, "copay_changed"),
    (
        "copay same as last check",
        active(replace(COPAY_25, amount=Decimal("30"))),
        replace(CONTEXT, previous_copay=Decimal("30")),
        "copay_changed",
    ),
    (
        "out-of-network copay differs",
        active(replace(COPAY_25, amount=Decimal("60"), network="out")),
        CONTEXT,
        "copay_changed",
    ),
    (
        "deductible at threshold",
        active(Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("500"))),
        CONTEXT,
        "high_deductible",
    ),
    (
        "out-of-network deductible",
        active(
            Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("9000"), network="out")
        ),
        CONTEXT,
        "high_deductible",
    ),
    (
        "annual deductible, not remaining",
        active(Benefit("C", "IND", ("30",), time_period="23", amount=Decimal("9000"))),
        CONTEXT,
        "high_deductible",
    ),
    ("AAA 72 is no duplicate", unverified(aaa("2100C", "72")), CONTEXT, "ambiguous_match"),
    ("EB*I elsewhere", active(Benefit("I", "IND", ("AL",))), CONTEXT, "service_not_covered"),
    (
        "one visit left",
        active(
            Benefit(
                "F", "IND", ("98",), time_period="29", quantity_qualifier="VS", quantity=Decimal(1)
            )
        ),
        CONTEXT,
        "service_not_covered",
    ),
]


def kinds(result: EligibilityResult, context: AlertContext) -> list[str]:
    return [alert.kind.value for alert in alerts_for(result, context)]


@pytest.mark.parametrize(("name", "result", "context", "kind"), FIRES, ids=[c[0] for c in FIRES])
def test_alert_fires(
    name: str, result: EligibilityResult, context: AlertContext, kind: str
) -> None:
    assert kind in kinds(result, context)


@pytest.mark.parametrize(
    ("name", "result", "context", "kind"), NEAR_MISSES, ids=[c[0] for c in NEAR_MISSES]
)
def test_near_miss_does_not_fire(
    name: str, result: EligibilityResult, context: AlertContext, kind: str
) -> None:
    assert kind not in kinds(result, context)


def test_every_kind_has_a_firing_case_and_a_near_miss() -> None:
    every = {kind.value for kind in AlertKind}
    assert {case[3] for case in FIRES} == every
    assert {case[3] for case in NEAR_MISSES} == every


def test_clean_active_answer_raises_nothing() -> None:
    assert alerts_for(active(COPAY_25), CONTEXT) == []


def test_outage_hides_other_rejections() -> None:
    """A payer outage makes the patient-level codes moot: one unverified alert, not three."""
    result = unverified(aaa("2100A", "42", "R"), aaa("2100C", "72"), aaa("2100B", "43"))
    alerts = alerts_for(result, replace(CONTEXT, retries_exhausted=True))
    assert [a.kind for a in alerts] == [AlertKind.UNVERIFIED]
    assert alerts[0].detail["reason"] == "payer_unavailable"
    assert "after retries" in alerts[0].summary


def test_inactive_answer_does_not_report_benefit_alerts() -> None:
    result = EligibilityResult(
        status=CoverageStatus.INACTIVE,
        benefits=(Benefit("6", "IND", ("30",)), Benefit("I", "IND", ("98",))),
    )
    assert kinds(result, CONTEXT) == ["not_active"]


def test_roles_follow_who_fixes_it() -> None:
    assert {kind for kind, role in ROLES.items() if role == "billing"} == {
        AlertKind.PROVIDER_SETUP,
        AlertKind.COORDINATION_OF_BENEFITS,
        AlertKind.HIGH_DEDUCTIBLE,
    }
    assert set(ROLES) == set(AlertKind)
    setup = alerts_for(unverified(aaa("2100B", "43")), CONTEXT)[0]
    assert setup.role == "billing"
    assert setup.detail == {"aaa": [{"loop": "2100B", "code": "43", "followup": "C"}]}


def test_summary_names_the_appointment_and_date() -> None:
    alert = alerts_for(EligibilityResult(status=CoverageStatus.INACTIVE), CONTEXT)[0]
    assert (
        alert.summary == "Appointment 123 on 2026-12-03: coverage not active on the date of service"
    )


def test_refresh_summary_names_the_patient_id() -> None:
    context = replace(CONTEXT, appointment_id=None, date_of_service=TODAY)
    alert = failure_alert(context, "payer_unavailable")
    assert alert.summary.startswith("Patient 45, coverage check for 2026-12-01: ")
    assert alert.kind is AlertKind.UNVERIFIED


def test_registration_alert_is_a_patient_data_fix() -> None:
    alert = registration_alert(CONTEXT, "missing_subscriber")
    assert alert.kind is AlertKind.FIX_PATIENT_DATA
    assert alert.role == "front_desk"
    assert alert.detail == {"reason": "missing_subscriber"}


def test_copay_changed_detail_is_amounts_only() -> None:
    alert = next(
        a
        for a in alerts_for(active(replace(COPAY_25, amount=Decimal("40"))), CONTEXT)
        if a.kind is AlertKind.COPAY_CHANGED
    )
    assert alert.detail == {"copay": "40", "before": "25"}
    assert "$25.00 to $40.00" in alert.summary


# --- figures ---------------------------------------------------------------------------------


def test_visit_copay_prefers_the_visit_service_type_in_network() -> None:
    result = active(
        Benefit("B", "IND", ("98",), amount=Decimal("50"), time_period="27", network="out"),
        Benefit("B", "IND", ("98",), amount=Decimal("25"), time_period="27", network="in"),
        Benefit("B", "IND", ("MH",), amount=Decimal("40"), time_period="27", network="in"),
    )
    assert visit_copay(result, "98") == Decimal("25")
    assert visit_copay(result, "MH") == Decimal("40")
    # A sick visit is billed as an office visit when the payer lists no BY copay.
    assert visit_copay(result, "BY") == Decimal("25")
    assert visit_copay(result, "PT") is None


def test_deductible_remaining_is_individual_in_network() -> None:
    result = active(
        Benefit("C", "FAM", ("30",), time_period="29", amount=Decimal("3000"), network="in"),
        Benefit("C", "IND", ("30",), time_period="23", amount=Decimal("1500"), network="in"),
        Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("900"), network="out"),
        Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("700"), network="unknown"),
        Benefit("C", "IND", ("30",), time_period="29", amount=Decimal("600"), network="in"),
    )
    assert deductible_remaining(result) == Decimal("600")
    assert deductible_remaining(active()) is None


# --- no patient data in what alerts carry ------------------------------------------------------

codes = st.sampled_from(sorted(AAA_REASONS))
loops = st.sampled_from(["2000A", "2100A", "2100B", "2100C", "2100D", "2110C"])
secret = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=12)


@given(
    status=st.sampled_from(list(CoverageStatus)),
    member_id=secret,
    rejections=st.lists(st.tuples(loops, codes), max_size=3),
    corrected=st.booleans(),
    exhausted=st.booleans(),
    copay=st.decimals(min_value=0, max_value=200, places=2),
)
def test_alerts_never_carry_the_member_id(
    status: CoverageStatus,
    member_id: str,
    rejections: list[tuple[str, str]],
    corrected: bool,
    exhausted: bool,
    copay: Decimal,
) -> None:
    result = active(
        replace(COPAY_25, amount=copay),
        Benefit("R", "IND", ("30",), entities=(Entity("PRP", "OTHER PLAN", "PI", member_id),)),
        status=status,
        member_id=member_id,
        group_number=member_id,
        insurance_type="HM",
        pcp=PCP_OTHER,
        payer_corrected_data=corrected,
        aaa=tuple(aaa(loop, code) for loop, code in rejections),
    )
    context = replace(CONTEXT, retries_exhausted=exhausted)
    alerts = alerts_for(result, context)
    if status is CoverageStatus.UNVERIFIED:
        assert alerts, "an unverified answer always tells someone"
    for alert in alerts:
        shown = alert.summary + json.dumps(alert.detail)
        assert member_id not in shown
        assert "OTHER PLAN" not in shown
        assert alert.summary.startswith("Appointment 123 on 2026-12-03: ")
        assert alert.role in ("front_desk", "billing")
    assert len({a.kind for a in alerts}) == len(alerts), "one alert per kind"
