"""A payer's amounts are finite, bounded, plain decimals, or nothing (`read_amount`)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from office.eligibility.codes import AMOUNT_DIGITS, read_amount
from tests.x12.test_x12_parse_rules import patient


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25", "25"),
        (" 10.00 ", "10.00"),
        (".2", "0.2"),
        ("7.", "7"),
        ("-5", "-5"),
        ("9" * AMOUNT_DIGITS, "9" * AMOUNT_DIGITS),
        ("-" + "9" * (AMOUNT_DIGITS - 2) + ".99", "-" + "9" * (AMOUNT_DIGITS - 2) + ".99"),
    ],
)
def test_plain_decimals_are_read(text: str, expected: str) -> None:
    assert read_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    [
        "1E+999999999",  # MemoryError in the alert rules, through a JSON payer
        "1E+50000000",  # a 66 MB work-item summary
        "1e5",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "1" * (AMOUNT_DIGITS + 1),
        "0." + "0" * AMOUNT_DIGITS + "1",
        "-" + "9" * (AMOUNT_DIGITS + 1),
        "+5",
        "1_000",
        "1,000",
        "0x10",
        "\u0661\u0662",  # Arabic-Indic digits, which Decimal itself would take
        "1 2",
        "--1",
        ".",
        "-",
        "",
    ],
)
def test_anything_else_is_no_amount(text: str) -> None:
    assert read_amount(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"-?[0-9]{0,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]+)?"))
def test_whatever_a_payer_sends_the_amount_is_small_and_printable(text: str) -> None:
    amount = read_amount(text)
    if amount is not None:
        assert amount.is_finite()
        assert len(amount.as_tuple().digits) <= AMOUNT_DIGITS
        assert len(f"${amount:,.2f}") < 2 * AMOUNT_DIGITS + 4


@pytest.mark.parametrize("raw", ["1" * (AMOUNT_DIGITS + 1), "1E+999999999"])
def test_a_271_amount_out_of_bounds_is_no_amount(raw: str) -> None:
    (benefit,) = patient(f"EB*C*IND*30***23*{raw}*{raw}**{raw}").benefits
    assert (benefit.amount, benefit.percent, benefit.quantity) == (None, None, None)


def test_a_271_amount_at_the_bound_is_read() -> None:
    (benefit,) = patient(f"EB*C*IND*30***23*{'9' * AMOUNT_DIGITS}").benefits
    assert benefit.amount == Decimal("9" * AMOUNT_DIGITS)
