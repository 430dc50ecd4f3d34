"""PII overlaps: the most specific validated detector claims a span, and numeric patterns need word boundaries."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.base import Sample
from evaluators.safety import EVALUATORS, find_pii
from evaluators.safety.pii import luhn_valid


def _types(text: str, entity_types: list[str] | None = None) -> list[tuple[str, str]]:
    return [(s.entity_type, s.text) for s in find_pii(text, entity_types)]


def _with_check_digits(country: str, bban: str) -> str:
    """A valid IBAN: ISO 13616 check digits computed for ``country`` and ``bban``."""
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def _luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in string.digits if luhn_valid(prefix + d))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN GB90YNTU67299444055881 please", [("IBAN", "GB90YNTU67299444055881")]),
        ("Swiss IBAN CH7066075QFWEHWBWWLAO, thanks", [("IBAN", "CH7066075QFWEHWBWWLAO")]),  # 7 digits only
        ("driver's licence U62928788557186 on file", []),
        ("Maestro 060412345674 expires soon", [("CREDIT_CARD", "060412345674")]),  # 12 digits, not a phone
        ("fuel card 869912345678904 at the pump", [("CREDIT_CARD", "869912345678904")]),
        ("Amex 3782 822463 10005 ok", [("CREDIT_CARD", "3782 822463 10005")]),
        ("call 0033 1 4567 8901 now", [("PHONE", "0033 1 4567 8901")]),  # Luhn-valid, but grouped like a phone
        ("order ref X4111111111111111 shipped", []),
        ("ticket 4111111111111111A", []),
    ],
)  # fmt: skip
def test_specific_detectors_claim_first_with_word_boundaries(text: str, expected: list[tuple[str, str]]) -> None:
    assert _types(text) == expected


def test_a_span_left_out_of_the_search_is_not_reported_as_a_looser_type() -> None:
    assert _types("card 4222 2222 2222 2 ok", ["PHONE"]) == []
    assert _types("IBAN GB90YNTU67299444055881", ["CREDIT_CARD", "PHONE"]) == []
    allowed = EVALUATORS["pii"](allow=["CREDIT_CARD"]).score(Sample(output="Pay with 4222 2222 2222 2 today."))
    assert allowed.passed and allowed.details["spans"] == []


@settings(max_examples=200, deadline=None)
@given(
    country=st.text(string.ascii_uppercase, min_size=2, max_size=2),
    bban=st.text(string.ascii_uppercase + string.digits, min_size=11, max_size=30),
    before=st.sampled_from(["IBAN ", "to: ", "(", ""]),
    after=st.sampled_from([" today.", ")", ".", ""]),
)
def test_any_valid_iban_is_one_iban_span(country: str, bban: str, before: str, after: str) -> None:
    iban = _with_check_digits(country, bban)
    assert _types(f"{before}{iban}{after}") == [("IBAN", iban)]


@settings(max_examples=200, deadline=None)
@given(letter=st.sampled_from(string.ascii_letters), digits=st.text(string.digits, min_size=11, max_size=18))
def test_digits_glued_to_a_letter_are_never_a_card(letter: str, digits: str) -> None:
    number = _luhn_complete(digits)
    assert all(t != "CREDIT_CARD" for t, _ in _types(f"id {letter}{number} and {number}{letter}"))


@settings(max_examples=200, deadline=None)
@given(digits=st.text(string.digits, min_size=11, max_size=18).filter(lambda d: len(set(d)) > 1))
def test_a_luhn_valid_card_number_is_a_card_whatever_its_first_digit(digits: str) -> None:
    number = _luhn_complete(digits)
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    for form in (number, grouped):
        assert _types(f"Pay with {form} today.") == [("CREDIT_CARD", form)]
