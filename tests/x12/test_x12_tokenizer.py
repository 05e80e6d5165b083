"""The tokenizer reads separators from the ISA and survives the samples' real-world defects."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.x12 import Separators, X12Error, read_separators, tokenize

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "x12"

STAR_CARET_COLON = Separators("*", "^", ":", "~")
INTELIGENZ_5010 = Separators("*", "^", "^", "~")  # repetition == component
SLOTT56 = Separators("|", None, "^", "~")
ZENTIST = Separators("|", "}", "^", "~")
BADX12 = Separators("*", ">", ":", "~")

SEPARATORS: dict[str, Separators] = {
    "LinuxForHealth__x12__subscriber-health-benefit-check.271": STAR_CARET_COLON,
    "LinuxForHealth__x12__dependent-health-benefit-check.271": STAR_CARET_COLON,
    "LinuxForHealth__x12__subscriber-health-benefit-check-error.271": STAR_CARET_COLON,
    "LinuxForHealth__x12__subscriber-health-benefit-check.270": STAR_CARET_COLON,
    "LinuxForHealth__x12__dependent-health-benefit-check.270": STAR_CARET_COLON,
    "Inteligenz__X12Parser__Example_3_1_2.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__Example_ErrorWithoutBenefitInfo.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__ValidationForSource.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__ValidationForReceiverName.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__ValidationForSubscriberName.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__ValidationForDependentBenefitInfo.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__ValidationOnAll.txt": INTELIGENZ_5010,
    "Inteligenz__X12Parser__Example3_CMS_HETS.txt": Separators("*", None, "|", "~"),
    "Inteligenz__X12Parser__FromMunawarAbad.txt": Separators("*", None, "|", "~"),
    "Inteligenz__X12Parser__From_tcplex.txt": Separators("*", None, ">", "~"),
    "Inteligenz__X12Parser__Example2_TMHP.txt": Separators("*", None, ":", "\r"),
    "Inteligenz__X12Parser__Example1_DHHS.txt": Separators("*", None, "^", "~"),
    "Inteligenz__X12Parser__Example1_IG_0x1D.txt": Separators("*", None, ":", "\x1d"),
    "albmarin__badX12__X279-response-to-generic-request-by-physician-for-patient-(dependent)-eligibility.edi": BADX12,  # noqa: E501
    "albmarin__badX12__X279-generic-request-by-clinic-for-patient-(subscriber)-eligibility.edi": BADX12,  # noqa: E501
    "slott56__TigerShark__271-example.txt": SLOTT56,
    "slott56__TigerShark__271-example-dependent-rejection.txt": SLOTT56,
    "slott56__TigerShark__271-dependent-benefits.txt": SLOTT56,
    "slott56__TigerShark__271-related-entity.txt": SLOTT56,
    "slott56__TigerShark__271-example-2.txt": SLOTT56,
    "zentist__TigerShark__271-example-3.txt": ZENTIST,
    "zentist__TigerShark__271-example-in-out-network.txt": ZENTIST,
}

ISA_5010 = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*240101*1200*^*00501*000000001*0*T*:~"
)


def test_every_sample_is_in_the_separator_table() -> None:
    assert {p.name for p in SAMPLES.iterdir() if p.suffix != ".md"} == set(SEPARATORS)


@pytest.mark.parametrize(("name", "expected"), sorted(SEPARATORS.items()))
def test_samples_separators_come_from_their_isa(name: str, expected: Separators) -> None:
    raw = (SAMPLES / name).read_bytes()
    separators, segments = tokenize(raw)
    assert separators == expected
    assert read_separators(raw.decode("utf-8")) == expected
    assert segments[0][0] == "ISA"
    assert segments[1][0] == "GS"
    assert segments[-1][0] == "IEA"
    # No indentation, BOM, CR/LF or trailing blank leaks into a segment id.
    for segment in segments:
        assert segment[0].isalnum()
        assert segment[0] == segment[0].strip().upper()


def test_0x1d_terminator_with_crlf_and_indentation() -> None:
    _, segments = tokenize((SAMPLES / "Inteligenz__X12Parser__Example1_IG_0x1D.txt").read_bytes())
    assert [s[0] for s in segments[:4]] == ["ISA", "GS", "ST", "BHT"]
    assert ["EQ", "30"] in segments
    assert len(segments) == 17


def test_bare_cr_terminator_and_trailing_blanks() -> None:
    _, segments = tokenize((SAMPLES / "Inteligenz__X12Parser__Example2_TMHP.txt").read_bytes())
    assert ["HL", "1", "", "20", "1"] in segments
    assert segments[-1] == ["IEA", "1", "309242122"]


def test_short_isa_falls_back_to_splitting_on_the_element_separator() -> None:
    text = (SAMPLES / "Inteligenz__X12Parser__From_tcplex.txt").read_text("utf-8-sig")
    isa = text.split("~", 1)[0]
    assert len(isa) + 1 != 106  # the positional rule cannot apply to this file
    assert read_separators(text) == Separators("*", None, ">", "~")


def test_tokenize_accepts_text_with_bom_and_leading_whitespace() -> None:
    separators, segments = tokenize("\ufeff \r\n\t" + ISA_5010 + "IEA*1*000000001~")
    assert separators == STAR_CARET_COLON
    assert [s[0] for s in segments] == ["ISA", "IEA"]


def test_tokenize_keeps_isa_padding_inside_elements() -> None:
    _, segments = tokenize(ISA_5010)
    assert segments[0][6] == "SENDER         "
    assert len(segments[0]) == 17


def test_4010_isa11_is_not_a_repetition_separator() -> None:
    text = ISA_5010.replace("*^*00501*", "*U*00401*")
    assert read_separators(text) == Separators("*", None, ":", "~")


def test_a_lost_terminator_before_a_new_line_is_recovered() -> None:
    text = ISA_5010 + "EB*A*IND*52*****0.1 \r\n  EB*I*EMP*98~\nSE*2*0001~"
    _, segments = tokenize(text)
    assert segments[1] == ["EB", "A", "IND", "52", "", "", "", "", "0.1"]
    assert segments[2] == ["EB", "I", "EMP", "98"]


def test_a_wrapped_line_is_joined_not_split() -> None:
    text = ISA_5010 + "MSG*PLAN REQUIRES \r\nPRECERT~SE*2*0001~"
    _, segments = tokenize(text)
    assert segments[1] == ["MSG", "PLAN REQUIRES PRECERT"]


def test_latin1_bytes_do_not_stop_tokenizing() -> None:
    _, segments = tokenize(ISA_5010.encode() + b"NM1*IL*1*M\xfcLLER~")
    assert segments[1] == ["NM1", "IL", "1", "MüLLER"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "no ISA header"),
        ("GS*HS*A*B~", "no ISA header"),
        ("<html>ISA*</html>", "no ISA header"),
        (b"\x00\x01ISA", "no ISA header"),
        ("ISAX00*", "invalid element separator"),
        ("ISA*00*short", "ISA header is incomplete"),
        (ISA_5010.replace("*:~", "*A~"), "invalid component separator"),
        (ISA_5010.replace("*:~", "*:Z"), "invalid segment terminator"),
    ],
)
def test_not_an_interchange_is_an_x12error(data: str | bytes, message: str) -> None:
    with pytest.raises(X12Error, match=message):
        tokenize(data)


def test_x12error_is_a_value_error() -> None:
    assert issubclass(X12Error, ValueError)
