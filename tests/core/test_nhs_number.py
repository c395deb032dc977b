"""NHS number checksum (modulus 11), against hand-checked numbers and as a property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.core import nhs_number


class TestIsValid:
    def test_hand_checked_numbers(self) -> None:
        # 943 476 5919: 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299; 299 % 11 = 2; 11-2 = 9.
        assert nhs_number.is_valid("9434765919")
        assert nhs_number.is_valid("943 476 5919")
        assert nhs_number.is_valid("943-476-5919")
        assert not nhs_number.is_valid("9434765918")

    def test_check_digit_ten_means_no_valid_number(self) -> None:
        # 999000007x: 9*10+9*9+9*8+7*2 = 257; 257 % 11 = 4; 11-4 = 7 -> valid digit 7.
        assert nhs_number.check_digit("999000007") == 7
        # 100000001x: 1*10+1*2 = 12; 12 % 11 = 1; 11-1 = 10 -> no valid number.
        assert nhs_number.check_digit("100000001") is None

    def test_wrong_shapes(self) -> None:
        fullwidth = "".join(chr(0xFF10 + int(d)) for d in "9434765919")
        for bad in ("", "12345", "94347659199", "94347659l9", fullwidth, "0000000000"):
            assert not nhs_number.is_valid(bad), bad

    def test_reasons_name_the_problem(self) -> None:
        assert nhs_number.invalid_reason("9434765919") is None
        assert "10 digits" in (nhs_number.invalid_reason("123") or "")
        assert "only digits" in (nhs_number.invalid_reason("94347659x9") or "")
        assert "should be 9" in (nhs_number.invalid_reason("9434765918") or "")
        assert "repeated digit" in (nhs_number.invalid_reason("1111111111") or "")
        assert "empty" in (nhs_number.invalid_reason(" ") or "")


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_exactly_one_check_digit_or_none(first_nine: str) -> None:
    valid = [d for d in range(10) if nhs_number.is_valid(first_nine + str(d))]
    if first_nine == first_nine[0] * 9:
        assert len(valid) <= 1
    elif nhs_number.check_digit(first_nine) is None:
        assert valid == []
    else:
        assert valid == [nhs_number.check_digit(first_nine)]
        assert nhs_number.invalid_reason(first_nine + str(valid[0])) is None


@given(st.text(max_size=14))
def test_valid_and_reason_agree(value: str) -> None:
    assert nhs_number.is_valid(value) == (nhs_number.invalid_reason(value) is None)
