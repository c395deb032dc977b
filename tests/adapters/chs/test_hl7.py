"""The fast HL7 v2 parser: the sample, tolerance, errors, records and generated input."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import AdapterError
from adapters.chs.hl7 import (
    DATA_TYPE_ERROR,
    DEFAULT_SEPARATORS,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    STANDARD_SEGMENTS,
    SUPPORTED_VERSIONS,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION,
    Hl7Error,
    Separators,
    escape,
    hl7_datetime_to_iso,
    parse_message,
    parse_record,
    salvage_header,
    unescape,
)
from tests.adapters.chs.builders import EVN, MSH_24, PID, PV1, a01, message


def nhs_number(fields: dict[str, Any]) -> str | None:
    """Return PID-3's value whose CX-5 is NH: the path docs/adapters-chs.md documents."""
    return next((rep["1"] for rep in fields["PID"]["3"] if rep.get("5") == "NH"), None)


def raises(data: bytes, **kwargs: Any) -> Hl7Error:
    """Parse ``data`` expecting an Hl7Error, and return it."""
    with pytest.raises(Hl7Error) as info:
        parse_message(data, **kwargs)
    return info.value


class TestSampleFile:
    def test_every_message_parses_except_the_manifests_invalid_ones(
        self, sample_messages: list[bytes], manifest: dict[str, Any]
    ) -> None:
        invalid = {
            row["line"]: row
            for row in manifest["invalid_rows"]
            if row["file"] == "chs/adt/adt-0001.hl7"
        }
        assert len(sample_messages) == manifest["counts"]["chs/adt/adt-0001.hl7"]
        for line, raw in enumerate(sample_messages, 1):
            if line in invalid:
                error = raises(raw)
                assert error.field == invalid[line]["field"]
                assert invalid[line]["detail"] in error.reason
            else:
                parsed = parse_message(raw)
                assert parsed.control_id == f"{int(parsed.control_id):010d}"

    def test_the_sample_passes_the_strict_structure_check(
        self, sample_messages: list[bytes]
    ) -> None:
        valid = [m for m in sample_messages if m.startswith(b"MSH")]
        kinds = {parse_message(m, strict=True).kind for m in valid}
        assert kinds == {
            "adt_a01",
            "adt_a02",
            "adt_a03",
            "adt_a08",
            "adt_a28",
            "adt_a31",
            "adt_a40",
        }

    def test_an_a28_reads_as_the_generator_wrote_it(self, sample_messages: list[bytes]) -> None:
        fields = parse_message(sample_messages[1]).fields
        assert nhs_number(fields) == "9997097203"
        assert fields["PID"]["5"] == [{"1": "Holmes", "2": "Brenda", "5": "Ms"}]
        # "Dr McDonald \T\ Partners": the escape is decoded in the value.
        assert fields["PD1"]["3"] == [{"1": "Dr McDonald & Partners", "3": "Y88664"}]
        assert fields["NK1"][0]["3"] == [{"1": "SPO", "2": "Spouse"}]
        assert fields["PV1"]["2"] == [{"1": "N"}]
        assert fields["PID"]["32"] == [{"1": "01"}]


class TestFieldsShape:
    def test_fields_are_lists_of_repetitions_of_components_keyed_by_position(self) -> None:
        fields = parse_message(a01()).fields
        assert fields["PID"]["3"] == [
            {"1": "9434765919", "4": "NHS", "5": "NH"},
            {"1": "CHS0000001", "4": "RXX", "5": "MR"},
        ]
        assert fields["PID"]["8"] == [{"1": "F"}]
        assert fields["PV1"]["44"] == [{"1": "20250102030000+0000"}]
        assert "2" not in fields["PID"]  # empty fields are left out

    def test_msh_1_and_msh_2_are_kept_verbatim(self) -> None:
        msh = parse_message(a01()).fields["MSH"]
        assert msh["1"] == [{"1": "|"}]
        assert msh["2"] == [{"1": "^~\\&"}]
        assert msh["3"] == [{"1": "CHS"}]
        assert msh["9"] == [{"1": "ADT", "2": "A01", "3": "ADT_A01"}]
        assert msh["12"] == [{"1": "2.4"}]

    def test_repeating_segments_are_lists_and_others_dicts(self) -> None:
        fields = parse_message(a01("DG1|1||I10^Hypertension^I10", "DG1|2||E11^Diabetes^I10")).fields
        assert isinstance(fields["PID"], dict)
        assert [d["3"][0]["1"] for d in fields["DG1"]] == ["I10", "E11"]

    def test_subcomponents_beyond_the_first_get_underscore_keys(self) -> None:
        pid = "PID|1||9434765919^^^NHS&2.16.840.1.113883.2.1.4.1&ISO^NH"
        fields = parse_message(message(MSH_24, EVN, pid, PV1)).fields
        assert fields["PID"]["3"] == [
            {
                "1": "9434765919",
                "4": "NHS",
                "4_2": "2.16.840.1.113883.2.1.4.1",
                "4_3": "ISO",
                "5": "NH",
            }
        ]

    def test_empty_repetitions_keep_their_place_and_trailing_ones_go(self) -> None:
        pid = PID + "|||||07700 900123^ORN^CP~~0113 496 0000^PRN^PH~~"
        fields = parse_message(message(MSH_24, EVN, pid, PV1)).fields
        assert fields["PID"]["13"] == [
            {"1": "07700 900123", "2": "ORN", "3": "CP"},
            {},
            {"1": "0113 496 0000", "2": "PRN", "3": "PH"},
        ]

    def test_the_hl7_null_value_is_kept_as_written(self) -> None:
        fields = parse_message(message(MSH_24, EVN, PID + '|||""', PV1)).fields
        assert fields["PID"]["11"] == [{"1": '""'}]


class TestTolerance:
    @pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
    def test_any_segment_terminator_gives_the_same_fields(self, sep: str) -> None:
        assert parse_message(a01(sep=sep)).fields == parse_message(a01()).fields

    def test_surrounding_whitespace_blank_lines_and_a_bom_are_ignored(self) -> None:
        body = a01().replace(b"\rPID", b"\r\r\n  \rPID")
        raw = b"\xef\xbb\xbf\r\n\n  " + body + b"\r\n\r\n\n"
        assert parse_message(raw).fields == parse_message(a01()).fields

    def test_trailing_separators_change_nothing(self) -> None:
        pid = (
            "PID|1||9434765919^^^NHS^NH^^~CHS0000001^^^RXX^MR~||Smith^Anne^^^Mrs^^^"
            "||19400101|F|||||"
        )
        assert (
            parse_message(message(MSH_24, EVN, pid, PV1)).fields["PID"]
            == (parse_message(a01()).fields["PID"])
        )

    @pytest.mark.parametrize(
        ("escaped", "decoded"),
        [
            (r"a\F\b", "a|b"),
            (r"a\S\b\T\c", "a^b&c"),
            (r"a\R\b\E\c", "a~b\\c"),
            (r"line 1\X0D\line 2", "line 1\rline 2"),
            ("\\X0D0A\\", "\r\n"),
            ("caf\\XC3A9\\", "café"),
            (r"one\.br\two", "one\ntwo"),
            (r"\H\bold\N\ text", "bold text"),
            (r"\Zlocal\ kept", r"\Zlocal\ kept"),
            (r"\XZZ\ not hex", r"\XZZ\ not hex"),
            (r"lone \ backslash", r"lone \ backslash"),
        ],
    )
    def test_escape_sequences_are_decoded(self, escaped: str, decoded: str) -> None:
        fields = parse_message(a01(f"ZCB|1|{escaped}")).fields
        assert fields["ZCB"][0]["2"] == [{"1": decoded}]

    def test_non_default_separators(self) -> None:
        table = str.maketrans({"|": "!", "^": "@", "~": "*", "\\": "/", "&": "$"})
        default = parse_message(a01("ZCB|Dr Patel \\T\\ Partners^x"))
        other = parse_message(
            a01("ZCB|Dr Patel \\T\\ Partners^x").decode().translate(table).encode()
        )
        assert other.header.separators == Separators("!", "@", "*", "/", "$")
        assert other.fields["MSH"]["1"] == [{"1": "!"}]
        assert other.fields["MSH"]["2"] == [{"1": "@*/$"}]
        for segment in ("EVN", "PID", "PV1"):
            assert other.fields[segment] == default.fields[segment]
        # \T\ stands for this message's subcomponent separator.
        assert other.fields["ZCB"][0]["1"] == [{"1": "Dr Patel $ Partners", "2": "x"}]
        assert default.fields["ZCB"][0]["1"] == [{"1": "Dr Patel & Partners", "2": "x"}]

    def test_an_msh_2_without_escape_or_subcomponent_characters(self) -> None:
        msh = MSH_24.replace("^~\\&", "^~", 1)
        fields = parse_message(message(msh, EVN, PID + r"|||a\F\b&c", PV1)).fields
        assert fields["PID"]["11"] == [{"1": r"a\F\b&c"}]

    def test_z_segments_are_kept_in_order(self) -> None:
        fields = parse_message(a01("ZU1|1|first^x", "ZU1|2|second", "ZXY|A")).fields
        assert fields["ZU1"] == [
            {"1": [{"1": "1"}], "2": [{"1": "first", "2": "x"}]},
            {"1": [{"1": "2"}], "2": [{"1": "second"}]},
        ]
        assert fields["ZXY"] == [{"1": [{"1": "A"}]}]

    def test_a_v2_3_header_without_structure_takes_the_events_structure(self) -> None:
        msh = "MSH|^~\\&|CHS|RXX|CB|CB|199901011200||ADT^A28|X23|P|2.3"
        parsed = parse_message(
            message(msh, "EVN|A28|199901011200", "PID|1||123^^^RXX^MR", "PV1|1|N")
        )
        assert parsed.kind == "adt_a28"
        assert parsed.meta["structure"] == "ADT_A01"  # no ADT_A05 before v2.4
        assert parsed.meta["message_datetime"] == "1999-01-01T12:00"

    def test_a_v2_5_1_header(self) -> None:
        msh = MSH_24.replace("|2.4|", "|2.5.1|").replace("ADT^A01^ADT_A01", "ADT^A04^ADT_A01")
        parsed = parse_message(message(msh, EVN.replace("A01", "A04"), PID, PV1), strict=True)
        assert (parsed.kind, parsed.header.version, parsed.meta["structure"]) == (
            "adt_a04",
            "2.5.1",
            "ADT_A01",
        )

    def test_a_latin_1_message_declared_in_msh_18(self) -> None:
        msh = MSH_24.replace("UNICODE UTF-8", "8859/1")
        raw = message(msh, EVN, "PID|1||1^^^RXX^MR||Ren\xe9e").replace(b"\r", b"\n")
        raw = raw.decode().encode("latin-1") + b"\r" + PV1.encode()
        assert parse_message(raw).fields["PID"]["5"] == [{"1": "Renée"}]


class TestErrors:
    @pytest.mark.parametrize(
        ("raw", "field", "words"),
        [
            (b"", "MSH", "empty"),
            (b"  \r\n ", "MSH", "empty"),
            (b"EVN|A01\rPID|1", "MSH", "no MSH segment"),
            (b"EVN|A01\r" + a01(), "MSH", "MSH is not first"),
            (b"MSHA^~\\&|x", "MSH-1", "field separator 'A'"),
            (b"MSH|^^\\&|x", "MSH-2", "repeats"),
            (b"MSH||x", "MSH-2", "1 to 5"),
            (b"MSH|", "MSH-2", "too short"),
        ],
    )
    def test_unreadable_headers_are_rejected(self, raw: bytes, field: str, words: str) -> None:
        error = raises(raw)
        assert (error.field, error.reject) == (field, True)
        assert words in error.reason

    @pytest.mark.parametrize(
        ("old", "new", "field", "condition", "words"),
        [
            ("ADT^A01^ADT_A01", "", "MSH-9", REQUIRED_FIELD_MISSING, "message type is missing"),
            ("ADT^A01^ADT_A01", "ADT", "MSH-9", REQUIRED_FIELD_MISSING, "trigger event"),
            ("ADT^A01^ADT_A01", "ORU^R01^ORU_R01", "MSH-9", UNSUPPORTED_MESSAGE_TYPE, "'ORU'"),
            ("ADT^A01^ADT_A01", "ADT^A99", "MSH-9", UNSUPPORTED_EVENT, "ADT^A99"),
            ("|CTRL1|", "||", "MSH-10", REQUIRED_FIELD_MISSING, "control id"),
            ("|P|2.4|", "|P||", "MSH-12", REQUIRED_FIELD_MISSING, "version"),
            ("|P|2.4|", "|P|2.6|", "MSH-12", UNSUPPORTED_VERSION, "'2.6'"),
            ("UNICODE UTF-8", "UNICODE UTF-16", "MSH-18", DATA_TYPE_ERROR, "UTF-16"),
        ],
    )
    def test_unacceptable_headers_are_rejected_naming_the_field(
        self, old: str, new: str, field: str, condition: int, words: str
    ) -> None:
        error = raises(message(MSH_24.replace(old, new, 1), EVN, PID, PV1))
        assert (error.field, error.condition, error.reject) == (field, condition, True)
        assert words in error.reason
        assert str(error).startswith(f"{field}: ")

    def test_a_bad_message_datetime_names_msh_7(self) -> None:
        error = raises(message(MSH_24.replace("20250102030405+0000", "31/02/2026"), EVN, PID, PV1))
        assert error.field == "MSH-7"
        assert "'31/02/2026'" in error.reason

    def test_an_unknown_segment_names_it(self) -> None:
        error = raises(message(MSH_24, EVN, PID.replace("PID", "P1D"), PV1))
        assert (error.field, error.condition, error.reject) == (
            "P1D",
            SEGMENT_SEQUENCE_ERROR,
            False,
        )
        assert "segment 3" in error.reason

    @pytest.mark.parametrize("bad", ["PI|1", "pid|1", "PIDX|1", " PID|1", "Z1|x"])
    def test_a_malformed_segment_id_is_refused(self, bad: str) -> None:
        error = raises(message(MSH_24, EVN, PID, bad, PV1))
        assert error.field == "segment 4"
        assert "does not start with a segment id" in error.reason

    def test_the_segment_table_is_hl7apys(self) -> None:
        ids: set[str] = set()
        for version in SUPPORTED_VERSIONS:
            ids |= set(importlib.import_module(f"hl7apy.v{version.replace('.', '_')}").SEGMENTS)
        assert ids - {"ANYHL7SEGMENT"} == STANDARD_SEGMENTS

    def test_a_repeated_single_segment_is_refused(self) -> None:
        error = raises(message(MSH_24, EVN, PID, PID, PV1))
        assert error.field == "PID"
        assert "repeats PID" in error.reason

    def test_a_missing_pid_is_refused(self) -> None:
        assert raises(message(MSH_24, EVN, PV1)).field == "PID"

    def test_a_second_msh_or_a_batch_header_is_refused(self) -> None:
        assert "second message" in raises(a01() + b"\r" + a01()).reason
        assert raises(a01("BHS|^~\\&")).field == "BHS"

    def test_binary_garbage_is_refused(self) -> None:
        assert "binary data" in raises(a01() + b"\rZZZ|\x00\x01\x02").reason
        assert raises(bytes(range(256))).field == "MSH"

    def test_bytes_that_are_not_utf_8_name_msh_18(self) -> None:
        error = raises(
            a01("ZCB|\xff\xfe".encode("latin-1").decode("latin-1")).replace(b"\xc3\xbf", b"\xff")
        )
        assert error.field == "MSH-18"

    def test_the_size_limit(self) -> None:
        error = raises(a01(), max_bytes=100)
        assert error.reject
        assert "limit is 100" in error.reason

    def test_a_non_bytes_argument_is_an_adapter_error(self) -> None:
        with pytest.raises(AdapterError):
            parse_message("MSH|^~\\&|")  # type: ignore[arg-type]


class TestStrict:
    def test_segments_out_of_order_are_refused_naming_the_first(self) -> None:
        error = raises(message(MSH_24, PID, EVN, PV1), strict=True)
        assert error.field == "PID"
        assert "expected EVN" in error.reason
        parse_message(message(MSH_24, PID, EVN, PV1))  # tolerant mode takes it

    def test_a_missing_required_segment_is_refused(self) -> None:
        error = raises(message(MSH_24, EVN, PID), strict=True)
        assert error.field == "PV1"

    def test_a_missing_required_field_is_refused(self) -> None:
        error = raises(message(MSH_24, EVN, "PID|1", PV1), strict=True)
        assert error.field == "PID-3"

    def test_fields_beyond_the_versions_definition_are_refused(self) -> None:
        msh = "MSH|^~\\&|CHS|RXX|CB|CB|199901011200||ADT^A28|X23|P|2.3"
        pid = "PID|1||123^^^RXX^MR" + "|" * 30 + "01"  # PID-32 came in v2.4
        error = raises(message(msh, "EVN|A28|199901011200", pid, "PV1|1|N"), strict=True)
        assert error.field == "PID"
        assert "more fields than HL7 v2.3 defines" in error.reason

    def test_z_segments_are_allowed_anywhere(self) -> None:
        parse_message(message(MSH_24, "ZA1|x", EVN, PID, PV1, "ZB2|y"), strict=True)


class TestRecord:
    def test_a_message_becomes_a_source_record(self) -> None:
        raw = a01()
        record = parse_record(raw, origin="mllp:test")
        assert (record.system, record.kind, record.id) == ("chs", "adt_a01", "CTRL1")
        assert record.version == "2025-01-02T03:04:05+00:00"
        assert (record.raw, record.origin) == (raw, "mllp:test")
        assert record.meta == {
            "message_type": "ADT",
            "event": "A01",
            "structure": "ADT_A01",
            "control_id": "CTRL1",
            "sending_application": "CHS",
            "sending_facility": "RXX",
            "receiving_application": "CAREBRIDGE",
            "receiving_facility": "CAREBRIDGE",
            "message_datetime": "2025-01-02T03:04:05+00:00",
            "event_datetime": "2025-01-02T03:00:00+00:00",
            "processing_id": "P",
            "version": "2.4",
            "accept_ack_type": "AL",
            "application_ack_type": "NE",
            "charset": "UNICODE UTF-8",
        }

    @pytest.mark.parametrize(
        ("event", "structure"),
        [
            ("A04", "ADT_A01"),
            ("A08", "ADT_A01"),
            ("A05", "ADT_A05"),
            ("A31", "ADT_A05"),
            ("A11", "ADT_A09"),
            ("A13", "ADT_A01"),
            ("A34", "ADT_A30"),
        ],
    )
    def test_events_sharing_a_structure_keep_their_own_kind(
        self, event: str, structure: str
    ) -> None:
        msh = MSH_24.replace("ADT^A01^ADT_A01", f"ADT^{event}")
        record = parse_record(message(msh, EVN, PID, PV1))
        assert record.kind == f"adt_{event.lower()}"
        assert record.meta["structure"] == structure

    def test_the_version_falls_back_to_evn_2(self) -> None:
        msh = MSH_24.replace("20250102030405+0000", "")
        assert parse_record(message(msh, EVN, PID, PV1)).version == "2025-01-02T03:00:00+00:00"

    def test_errors_carry_raw_bytes_and_origin(self) -> None:
        raw = message(MSH_24, EVN, PV1)
        with pytest.raises(Hl7Error) as info:
            parse_record(raw, origin="file.hl7:3")
        assert (info.value.raw, info.value.origin) == (raw, "file.hl7:3")


class TestDatetime:
    @pytest.mark.parametrize(
        ("hl7", "iso"),
        [
            ("20251206142000+0000", "2025-12-06T14:20:00+00:00"),
            ("20260418160500+0100", "2026-04-18T16:05:00+01:00"),
            ("202604181605-0530", "2026-04-18T16:05-05:30"),
            ("20260418160501.25", "2026-04-18T16:05:01.250000"),
            ("2026041816", "2026-04-18T16:00"),
            ("20231108", "2023-11-08"),
            ("202311", "2023-11"),
            ("2023", "2023"),
            ("20240229", "2024-02-29"),
        ],
    )
    def test_valid_values(self, hl7: str, iso: str) -> None:
        assert hl7_datetime_to_iso(hl7) == iso

    @pytest.mark.parametrize(
        "bad",
        ["", "31/02/2026", "20230229", "20231301", "20231108250000", "20231108+2500", "2023110"],
    )
    def test_invalid_values(self, bad: str) -> None:
        assert hl7_datetime_to_iso(bad) is None


class TestSalvageHeader:
    def test_reads_what_it_can_from_a_broken_message(self) -> None:
        header = salvage_header(b"junk\rMSH|^~\\&|APP|FAC|CB|CB|2025||ADT^A01|C9|P|2.5\r\x00\x00")
        assert (header.raw_field(3), header.raw_field(4), header.control_id) == ("APP", "FAC", "C9")
        assert (header.event, header.version) == ("A01", "2.5")

    def test_unusable_separators_fall_back_to_the_defaults(self) -> None:
        header = salvage_header(b"MSHA^~\\&|x")
        assert header.separators == DEFAULT_SEPARATORS
        assert header.msh == ()

    @given(st.binary(max_size=300))
    def test_never_raises(self, data: bytes) -> None:
        salvage_header(data)


# Text values: anything printable, including every delimiter and CR/LF, which must be escaped.
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f")
    | st.sampled_from("|^~\\&\r\n"),
    max_size=12,
)


def _escape_by_hand(value: str) -> str:
    """Escape a value independently of the code under test (HL7 v2 section 2.7)."""
    out = []
    for ch in value:
        out.append(
            {
                "\\": "\\E\\",
                "|": "\\F\\",
                "^": "\\S\\",
                "&": "\\T\\",
                "~": "\\R\\",
                "\r": "\\X0D\\",
                "\n": "\\X0A\\",
            }.get(ch, ch)
        )
    return "".join(out)


class TestGenerated:
    @settings(max_examples=300)
    @given(st.binary(max_size=400))
    def test_arbitrary_bytes_raise_only_adapter_errors(self, data: bytes) -> None:
        try:
            parse_message(data)
        except AdapterError:
            pass

    @settings(max_examples=300)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_after_a_valid_header_raise_only_adapter_errors(
        self, data: bytes
    ) -> None:
        try:
            parse_message(message(MSH_24, EVN).replace(b"\r", b"\n") + b"\r" + data, strict=False)
        except AdapterError:
            pass

    @settings(max_examples=200)
    @given(
        st.lists(
            st.lists(st.lists(_TEXT, min_size=1, max_size=3), min_size=1, max_size=4),
            min_size=1,
            max_size=3,
        )
    )
    def test_generated_values_round_trip(self, reps: list[list[list[str]]]) -> None:
        """PID-11 built from repetitions → components → subcomponents reads back the same."""
        written = "~".join(
            "^".join("&".join(_escape_by_hand(sub) for sub in comp) for comp in rep) for rep in reps
        )
        fields = parse_message(message(MSH_24, EVN, f"{PID}|||{written}", PV1)).fields
        expected = []
        for rep in reps:
            comps: dict[str, str] = {}
            for c, comp in enumerate(rep, 1):
                for s, sub in enumerate(comp, 1):
                    if sub:
                        comps[str(c) if s == 1 else f"{c}_{s}"] = sub
            expected.append(comps)
        while expected and not expected[-1]:
            expected.pop()
        assert fields["PID"].get("11", []) == expected

    @given(_TEXT)
    def test_escape_then_unescape_is_identity(self, value: str) -> None:
        assert unescape(escape(value), DEFAULT_SEPARATORS) == value
