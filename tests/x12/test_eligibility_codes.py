"""classify_aaa follows the eligibility brief's "Retry or fix" table; overall_action ranks them."""

from __future__ import annotations

import pytest

from office.eligibility.codes import (
    AAA_FOLLOWUPS,
    AAA_REASONS,
    EB01_CODES,
    EB06_TIME_PERIODS,
    SERVICE_TYPES,
    classify_aaa,
    overall_action,
)
from office.eligibility.types import Aaa, AaaAction

RETRY, DATA, SETUP, HUMAN = (
    AaaAction.RETRY_LATER,
    AaaAction.FIX_PATIENT_DATA,
    AaaAction.FIX_PROVIDER_SETUP,
    AaaAction.HUMAN_REVIEW,
)

TABLE = [
    # Payer level: outage or throttling -> retry; bad participant/payer id -> setup.
    ("2000A", "42", RETRY),
    ("2000A", "80", RETRY),
    ("2100A", "42", RETRY),
    ("2100A", "80", RETRY),
    ("2000A", "04", RETRY),
    ("2000A", "79", SETUP),
    ("2100A", "T4", SETUP),
    ("2000A", "41", SETUP),
    ("2000A", "72", HUMAN),  # not a payer-level reason at all
    # Provider level.
    *[("2100B", code, SETUP) for code in ("41", "43", "44", "45", "46", "47", "50", "51", "97")],
    ("2100B", "79", SETUP),
    ("2100B", "T4", SETUP),
    ("2100B", "42", RETRY),
    ("2100B", "76", HUMAN),
    # Subscriber and dependent data the office can correct.
    *[
        ("2100C", code, DATA)
        for code in ("15", "33", "58", "60", "62", "63", "71", "72", "73", "74", "75", "78")
    ],
    *[("2100D", code, DATA) for code in ("64", "65", "66", "67", "77", "58", "71")],
    ("2110C", "60", DATA),
    ("2110D", "60", DATA),
    # Patient loops: provider problems, outages, and what only a person can judge.
    ("2100C", "43", SETUP),
    ("2110C", "51", SETUP),
    ("2110D", "52", SETUP),
    ("2100C", "42", RETRY),
    ("2100C", "76", HUMAN),
    ("2100D", "68", HUMAN),
    ("2100D", "35", HUMAN),
    ("2110D", "70", HUMAN),
    ("2100C", "AE", HUMAN),
    # Unknown codes and loops.
    ("2100C", "RC", HUMAN),
    ("2000A", "ZZ", HUMAN),
    ("2100C", "", HUMAN),
    ("9999", "72", HUMAN),
    ("9999", "80", RETRY),
]


@pytest.mark.parametrize(("loop", "code", "expected"), TABLE)
def test_classify_aaa(loop: str, code: str, expected: AaaAction) -> None:
    assert classify_aaa(loop, code) == expected


def test_classify_aaa_tolerates_case_and_blanks() -> None:
    assert classify_aaa(" 2100c ", " t4 ") == SETUP
    assert classify_aaa("2100A", "t4") == SETUP


def aaa(loop: str, code: str) -> Aaa:
    return Aaa(loop, code, None, False, classify_aaa(loop, code))


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], None),
        ([aaa("2100C", "72")], DATA),
        ([aaa("2000A", "79"), aaa("2000A", "42")], RETRY),  # the brief's payer-level 79+42
        ([aaa("2100B", "43"), aaa("2100C", "72")], SETUP),
        ([aaa("2100C", "76"), aaa("2100C", "72")], HUMAN),
    ],
)
def test_overall_action_ranks_outage_then_setup_then_review(
    items: list[Aaa], expected: AaaAction | None
) -> None:
    assert overall_action(items) == expected


def test_code_tables_label_the_codes_the_office_sees() -> None:
    assert EB01_CODES["1"] == "Active Coverage"
    assert EB01_CODES["6"] == "Inactive"
    assert EB06_TIME_PERIODS["29"] == "Remaining"
    assert EB06_TIME_PERIODS["27"] == "Visit"
    assert AAA_REASONS["42"] == "Unable to Respond at Current Time"
    assert AAA_FOLLOWUPS["C"] == "Please Correct and Resubmit"
    # LinuxForHealth mislabels these; the TR3 names them so.
    assert (SERVICE_TYPES["A4"], SERVICE_TYPES["A6"], SERVICE_TYPES["A7"]) == (
        "Psychiatric",
        "Psychotherapy",
        "Psychiatric - Inpatient",
    )
    for code in ("1", "33", "35", "47", "48", "50", "86", "88", "98", "AL", "MH", "UC"):
        assert code in SERVICE_TYPES  # the CORE 154 explicit-inquiry set
