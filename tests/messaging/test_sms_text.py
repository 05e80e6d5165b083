"""GSM-7 budgeting: what fits one SMS segment, and folding text into the alphabet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from office.messages import gsm7_length, sms_fits, to_gsm7

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"


def test_alphabet_sizes() -> None:
    assert len(set(GSM7_BASIC)) == 127  # 128 code points minus ESC
    assert all(gsm7_length(char) == 1 for char in GSM7_BASIC)
    assert all(gsm7_length(char) == 2 for char in GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("a" * 160, True),
        ("a" * 161, False),
        ("€" * 80, True),
        ("a" * 159 + "€", False),
        ("a" * 158 + "[", True),
        ("", True),
        ("Cita mañana, señora Muñoz", True),
        ("Cita confirmada 👍", False),
        ("Su cita está confirmada", False),  # "á" is not GSM-7: the text would go out as UCS-2
        ("Call us “today”", False),
    ],
)
def test_sms_fits(text: str, fits: bool) -> None:
    assert sms_fits(text) is fits


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Clínica Pediátrica", "Clinica Pediatrica"),
        ("María José Núñez", "Maria José Nuñez"),
        ("Jose\u0301 Mun\u0303oz", "José Muñoz"),
        ("a\u0301\u0301", "a"),
        ("\u201cQuoted\u201d \u2013 dash\u2026", '"Quoted" - dash...'),
        ("ﬁle", "file"),
        ("ok 👍", "ok ?"),
        ("Ça va", "Ça va"),
        ("ça va", "ca va"),
    ],
)
def test_to_gsm7_examples(text: str, folded: str) -> None:
    assert to_gsm7(text) == folded


@given(st.text())
def test_to_gsm7_always_yields_gsm7(text: str) -> None:
    assert gsm7_length(to_gsm7(text)) is not None


@given(st.text())
def test_to_gsm7_is_idempotent(text: str) -> None:
    once = to_gsm7(text)
    assert to_gsm7(once) == once


@given(st.text(alphabet=GSM7_BASIC + GSM7_EXTENSION))
def test_to_gsm7_keeps_gsm7_text_and_counts_extension_twice(text: str) -> None:
    assert to_gsm7(text) == text
    extension = sum(char in GSM7_EXTENSION for char in text)
    assert gsm7_length(text) == len(text) + extension
    assert sms_fits(text) is (len(text) + extension <= 160)
