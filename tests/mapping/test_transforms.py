"""The registered transforms, one class each; and any JSON in gives a value or a TransformError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mapping.transforms import REGISTRY, TransformContext, TransformError
from tests.mapping.helpers import NOW

CONFIG = {"invalid_nhs_number_system": "https://example.org/Id/invalid-nhs-number"}


def call(name: str, value: Any, **args: Any) -> tuple[Any, list[str]]:
    """Call a transform with its defaults filled in; return its result and warnings."""
    transform = REGISTRY[name]
    full = {k: (args[k] if k in args else a.default) for k, a in transform.args.items()}
    ctx = TransformContext(now=NOW, config=CONFIG)
    result = transform.func(value, full, ctx)
    return result, [message for message, _ in ctx.warnings]


def reason(name: str, value: Any, **args: Any) -> str:
    with pytest.raises(TransformError) as caught:
        call(name, value, **args)
    return caught.value.reason


class TestIsoDateToDate:
    def test_iso_date(self) -> None:
        assert call("iso_date_to_date", "2026-02-28")[0] == "2026-02-28"

    def test_other_format(self) -> None:
        assert call("iso_date_to_date", "28/02/2026", format="%d/%m/%Y")[0] == "2026-02-28"
        assert call("iso_date_to_date", "20260228", format="%Y%m%d")[0] == "2026-02-28"

    @pytest.mark.parametrize("bad", ["31/02/2026", "2026-02-30", "20260228", "2026-2-28", "x"])
    def test_not_a_real_date(self, bad: str) -> None:
        assert reason("iso_date_to_date", bad) == "is not a real date in the format YYYY-MM-DD"

    def test_not_future(self) -> None:
        assert call("iso_date_to_date", "2026-11-01", not_future=True)[0] == "2026-11-01"
        assert reason("iso_date_to_date", "2026-11-02", not_future=True) == (
            "is in the future (after 2026-11-01)"
        )

    def test_non_text(self) -> None:
        assert reason("iso_date_to_date", 20260228) == (
            "is not a real date in the format YYYY-MM-DD"
        )
        assert reason("iso_date_to_date", ["2026-01-01"]) == "expected a date as text, got a list"


class TestLocalDatetimeToInstant:
    def test_summer_time_gets_bst_offset(self) -> None:
        assert call("local_datetime_to_instant", "2026-07-01T14:05")[0] == (
            "2026-07-01T14:05:00+01:00"
        )

    def test_winter_time_is_gmt(self) -> None:
        assert call("local_datetime_to_instant", "20260112093000", format="%Y%m%d%H%M%S")[0] == (
            "2026-01-12T09:30:00+00:00"
        )

    def test_an_offset_is_respected_and_shown_in_local_time(self) -> None:
        assert call("local_datetime_to_instant", "2026-07-01T13:05:00Z")[0] == (
            "2026-07-01T14:05:00+01:00"
        )

    def test_other_zone(self) -> None:
        assert call("local_datetime_to_instant", "2026-07-01T14:05", zone="UTC")[0] == (
            "2026-07-01T14:05:00+00:00"
        )

    def test_skipped_hour_fails(self) -> None:
        # Clocks went forward at 01:00 GMT on 29 March 2026.
        assert "did not exist in Europe/London" in reason(
            "local_datetime_to_instant", "2026-03-29T01:30"
        )

    def test_repeated_hour_reads_the_first_with_a_warning(self) -> None:
        # Clocks went back at 02:00 BST on 25 October 2026: 01:30 happened twice.
        result, warnings = call("local_datetime_to_instant", "2026-10-25T01:30")
        assert result == "2026-10-25T01:30:00+01:00"
        assert warnings == [
            "falls in the hour the clocks went back in Europe/London; read as the first"
        ]

    @pytest.mark.parametrize("bad", ["2026-07-01", "yesterday", "2026-13-01T00:00"])
    def test_not_a_date_time(self, bad: str) -> None:
        assert reason("local_datetime_to_instant", bad).startswith("is not a real date-time")


class TestHl7DatetimeToDatetime:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("20240521112000+0100", "2024-05-21T11:20:00+01:00"),
            ("20240521112000-0500", "2024-05-21T11:20:00-05:00"),
            ("20240521112000.25+0000", "2024-05-21T11:20:00.25+00:00"),
            ("202405211120", "2024-05-21T11:20:00+01:00"),
            ("2024012111", "2024-01-21T11:00:00+00:00"),
            ("20240521", "2024-05-21"),
            ("20240521+0100", "2024-05-21"),
            ("202405", "2024-05"),
            ("2024", "2024"),
        ],
    )
    def test_keeps_the_senders_precision(self, value: str, expected: str) -> None:
        assert call("hl7_datetime_to_datetime", value) == (expected, [])

    def test_times_without_an_offset_are_read_in_the_zone(self) -> None:
        assert call("hl7_datetime_to_datetime", "20240521112000", zone="UTC") == (
            "2024-05-21T11:20:00+00:00",
            [],
        )
        assert reason("hl7_datetime_to_datetime", "20260329013000").startswith(
            "names a time that did not exist"
        )
        _, warnings = call("hl7_datetime_to_datetime", "20241027013000")
        assert "clocks went back" in warnings[0]

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ("2024-05-21", "is not an HL7 date-time"),
            ("2024052", "is not an HL7 date-time"),
            ("20240230", "is not a real date"),
            ("20241301", "is not a real date"),
            ("00000101", "is not a real date"),
            ("20240521246000", "is not a real time of day"),
            ("20240521120000+1500", "impossible UTC offset"),
            ("20240521120000+0160", "impossible UTC offset"),
        ],
    )
    def test_not_an_hl7_date_time(self, bad: str, message: str) -> None:
        assert message in reason("hl7_datetime_to_datetime", bad)

    def test_non_text(self) -> None:
        assert reason("hl7_datetime_to_datetime", ["2024"]).startswith("expected an HL7 date-time")
        assert call("hl7_datetime_to_datetime", 2024) == ("2024", [])


class TestHl7DatetimeToDate:
    def test_date_part_at_its_precision(self) -> None:
        assert call("hl7_datetime_to_date", "19400109") == ("1940-01-09", [])
        assert call("hl7_datetime_to_date", "194001091230+0000") == ("1940-01-09", [])
        assert call("hl7_datetime_to_date", "194001") == ("1940-01", [])

    def test_not_future(self) -> None:
        assert call("hl7_datetime_to_date", "20261101", not_future=True)[0] == "2026-11-01"
        assert call("hl7_datetime_to_date", "202611", not_future=True)[0] == "2026-11"
        assert reason("hl7_datetime_to_date", "20261102", not_future=True).startswith(
            "is in the future"
        )
        assert reason("hl7_datetime_to_date", "2027", not_future=True).startswith(
            "is in the future"
        )

    def test_not_a_date(self) -> None:
        assert reason("hl7_datetime_to_date", "19400230").startswith("is not a real date")


class TestIcd10ToCoding:
    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("R296", "R29.6"),
            ("R29.6", "R29.6"),
            ("r29.6", "R29.6"),
            ("I10X", "I10"),
            ("I10", "I10"),
            ("S7200", "S72.00"),
            ("R29.6X", "R29.6"),
        ],
    )
    def test_dotted_code(self, code: str, expected: str) -> None:
        assert call("icd10_to_coding", code, system="http://hl7.org/fhir/sid/icd-10")[0] == {
            "system": "http://hl7.org/fhir/sid/icd-10",
            "code": expected,
        }

    def test_display(self) -> None:
        coding, _ = call(
            "icd10_to_coding", {"code": "L89", "display": " Pressure ulcer "}, system="s"
        )
        assert coding == {"system": "s", "code": "L89", "display": "Pressure ulcer"}

    @pytest.mark.parametrize("bad", ["12", "RXX", "R2A", "R29.A", "R29.666"])
    def test_not_icd10(self, bad: str) -> None:
        assert "is not an ICD-10 code" in reason("icd10_to_coding", bad, system="s")

    def test_no_code(self) -> None:
        assert reason("icd10_to_coding", {"display": "x"}, system="s") == "has no code"


class TestNamePartsToHumanName:
    def test_parts(self) -> None:
        parts = {"prefix": "Mrs", "given": ["Dorothy", "Anne Marie"], "family": " Gallagher "}
        assert call("name_parts_to_human_name", parts)[0] == {
            "use": "official",
            "family": "Gallagher",
            "given": ["Dorothy", "Anne", "Marie"],
            "prefix": ["Mrs"],
        }

    def test_use_and_suffix(self) -> None:
        name, _ = call("name_parts_to_human_name", {"given": "Dot", "suffix": "OBE"}, use="usual")
        assert name == {"use": "usual", "given": ["Dot"], "suffix": ["OBE"]}

    def test_nothing_without_family_or_given(self) -> None:
        assert call("name_parts_to_human_name", {"prefix": "Mr"})[0] is None

    def test_wrong_part_type_names_the_part(self) -> None:
        with pytest.raises(TransformError) as caught:
            call("name_parts_to_human_name", {"family": {"a": 1}})
        assert caught.value.part == "family"


class TestTextToHumanName:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "Dr Helen Singh",
                {"text": "Dr Helen Singh", "family": "Singh", "given": ["Helen"], "prefix": ["Dr"]},
            ),
            (
                "SINGH, Helen Mary",
                {"text": "SINGH, Helen Mary", "family": "SINGH", "given": ["Helen", "Mary"]},
            ),
            ("Cher", {"text": "Cher", "family": "Cher"}),
            (
                "Prof. Sir Alan Jones",
                {
                    "text": "Prof. Sir Alan Jones",
                    "family": "Jones",
                    "given": ["Alan"],
                    "prefix": ["Prof.", "Sir"],
                },
            ),
        ],
    )
    def test_splits(self, text: str, expected: dict[str, Any]) -> None:
        assert call("text_to_human_name", text)[0] == {"use": "official", **expected}


class TestAddressLinesToAddress:
    def test_parts_and_postcode_normalised(self) -> None:
        parts = {"lines": ["1 High St", None, "Beeston"], "city": "Leeds", "postal_code": "ls118as"}
        assert call("address_lines_to_address", parts)[0] == {
            "use": "home",
            "line": ["1 High St", "Beeston"],
            "city": "Leeds",
            "postalCode": "LS11 8AS",
        }

    def test_comma_separated_text_and_type(self) -> None:
        assert call("address_lines_to_address", "1 High St, Leeds", type="postal")[0] == {
            "use": "home",
            "type": "postal",
            "line": ["1 High St", "Leeds"],
        }

    def test_foreign_postcode_kept(self) -> None:
        assert call("address_lines_to_address", {"postal_code": "D02 X285"})[0]["postalCode"] == (
            "D02 X285"
        )

    def test_nothing_when_empty(self) -> None:
        assert call("address_lines_to_address", {"lines": [None, " "]})[0] is None


class TestPhoneToTelecom:
    def test_number(self) -> None:
        assert call("phone_to_telecom", " 0113  496 0803 ", use="work")[0] == {
            "system": "phone",
            "value": "0113 496 0803",
            "use": "work",
        }

    @pytest.mark.parametrize("bad", ["ex-directory", "12345", "0113 ABC"])
    def test_not_a_number_is_left_out_with_warning(self, bad: str) -> None:
        assert call("phone_to_telecom", bad) == (None, ["is not a telephone number; left out"])

    def test_email_is_not_checked_as_a_number(self) -> None:
        assert call("phone_to_telecom", "a@b.org", system="email")[0]["value"] == "a@b.org"


class TestNhsNumberToIdentifier:
    def test_valid_with_spaces(self) -> None:
        assert call("nhs_number_to_identifier", "943 476 5919") == (
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
            [],
        )

    def test_valid_as_a_number(self) -> None:
        assert call("nhs_number_to_identifier", 9434765919)[0]["value"] == "9434765919"

    def test_invalid_kept_under_local_system_and_flagged(self) -> None:
        identifier, warnings = call("nhs_number_to_identifier", "943 476 5918")
        assert identifier == {
            "system": "https://example.org/Id/invalid-nhs-number",
            "value": "943 476 5918",
        }
        assert warnings == [
            "is not a valid NHS number (fails the modulus 11 check (check digit should be 9));"
            " kept as an identifier under https://example.org/Id/invalid-nhs-number"
        ]


class TestValueToIdentifierAndCoding:
    def test_identifier(self) -> None:
        assert call("value_to_identifier", 123, system="urn:x", use="usual")[0] == {
            "system": "urn:x",
            "value": "123",
            "use": "usual",
        }

    def test_coding(self) -> None:
        assert call("code_to_coding", {"code": "P1", "display": " Thing "}, system="urn:x")[0] == {
            "system": "urn:x",
            "code": "P1",
            "display": "Thing",
        }

    def test_code_spacing_is_normalised(self) -> None:
        # FHIR codes may not hold double or edge spaces.
        assert call("code_to_coding", " a  b ", system="urn:x")[0]["code"] == "a b"

    def test_no_code(self) -> None:
        with pytest.raises(TransformError) as caught:
            call("code_to_coding", {"display": "x"}, system="urn:x")
        assert (caught.value.reason, caught.value.part) == ("has no code", "code")


class TestFlagToBoolean:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (True, True),
            ("Y", True),
            ("yes", True),
            (1, True),
            ("N", False),
            ("false", False),
            (0, False),
        ],
    )
    def test_flags(self, value: Any, expected: bool) -> None:
        assert call("flag_to_boolean", value)[0] is expected

    def test_other_values(self) -> None:
        assert reason("flag_to_boolean", "maybe").startswith("is not a yes/no value")
        assert reason("flag_to_boolean", 2).startswith("is not a yes/no value")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
OUTPUT_TYPES: Mapping[str, type] = {
    "date": str,
    "instant": str,
    "dateTime": str,
    "boolean": bool,
}


class TestAnyInput:
    @pytest.mark.parametrize("name", sorted(REGISTRY))
    @settings(max_examples=60, deadline=None)
    @given(
        value=JSON
        | st.dictionaries(
            st.sampled_from(
                ["family", "given", "lines", "code", "city", "postal_code", "display", "prefix"]
            ),
            JSON,
            max_size=4,
        )
    )
    def test_value_or_transform_error(self, name: str, value: Any) -> None:
        transform = REGISTRY[name]
        args = (
            {"system": "urn:x"}
            if "system" in transform.args and transform.args["system"].required
            else {}
        )
        error: TransformError | None = None
        try:
            result, _ = call(name, value, **args)
        except TransformError as exc:
            error = exc
        if error is not None:
            assert error.reason
        elif result is not None:
            assert isinstance(result, OUTPUT_TYPES.get(transform.output, dict))
