"""ACKs: read back with our splitter and validated with hl7apy, in both modes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_segments

from adapters.chs.ack import (
    Outcome,
    ack_code,
    build_ack,
    build_error_ack,
    is_enhanced_mode,
    wants_application_ack,
    wants_commit_ack,
)
from adapters.chs.hl7 import (
    DATA_TYPE_ERROR,
    Hl7Error,
    parse_message,
    salvage_header,
    split_message,
)
from tests.adapters.chs.builders import EVN, MSH_24, PID, PV1, message

AT = "20260102030405+0000"
# Original mode: MSH-15 and MSH-16 empty.
MSH_ORIGINAL = MSH_24.replace("|AL|NE|", "|||")


def read(ack: bytes) -> dict[str, Any]:
    """Return an ACK's fields, read back with the same splitter the ingest uses."""
    return split_message(ack)


def first(fields: dict[str, Any], segment: str, position: str) -> dict[str, str]:
    """Return the first repetition of a field of a single segment."""
    repetition: dict[str, str] = fields[segment][position][0]
    return repetition


def msg(msh: str = MSH_24, version: str = "2.4") -> bytes:
    """Return an A01 in the given version."""
    return message(msh.replace("|2.4|", f"|{version}|"), EVN, PID, PV1)


class TestBuildAck:
    def test_an_aa_swaps_applications_and_answers_the_control_id(self) -> None:
        ack = read(build_ack(parse_message(msg(MSH_ORIGINAL)), "AA", control_id="A1", timestamp=AT))
        assert [first(ack, "MSH", p)["1"] for p in ("3", "4", "5", "6")] == [
            "CAREBRIDGE",
            "CAREBRIDGE",
            "CHS",
            "RXX",
        ]
        assert first(ack, "MSH", "7") == {"1": AT}
        assert first(ack, "MSH", "9") == {"1": "ACK", "2": "A01", "3": "ACK"}
        assert (first(ack, "MSH", "10")["1"], first(ack, "MSH", "12")["1"]) == ("A1", "2.4")
        assert first(ack, "MSA", "1") == {"1": "AA"}
        assert first(ack, "MSA", "2") == {"1": "CTRL1"}
        assert "ERR" not in ack

    def test_msh_3_to_6_are_echoed_with_their_components(self) -> None:
        raw = msg(MSH_ORIGINAL.replace("|CHS|RXX|", "|CHS^1.2.3^ISO|RXX^^|"))
        ack = read(build_ack(parse_message(raw), "AA", control_id="A1", timestamp=AT))
        assert first(ack, "MSH", "5") == {"1": "CHS", "2": "1.2.3", "3": "ISO"}
        assert first(ack, "MSH", "6") == {"1": "RXX"}

    def test_v2_4_errors_go_in_err_1(self) -> None:
        ack = build_ack(
            parse_message(msg()),
            "AE",
            control_id="A2",
            text="PID-3: no NHS number",
            error_location="PID-3",
            condition=DATA_TYPE_ERROR,
            timestamp=AT,
        )
        fields = read(ack)
        assert first(fields, "MSA", "3") == {"1": "PID-3: no NHS number"}
        assert fields["ERR"][0]["1"] == [
            {"1": "PID", "2": "1", "3": "3", "4": "102", "4_2": "Data type error", "4_3": "HL70357"}
        ]

    @pytest.mark.parametrize("version", ["2.5", "2.5.1"])
    def test_v2_5_errors_use_err_2_3_4_and_8(self, version: str) -> None:
        ack = build_ack(
            parse_message(msg(version=version)),
            "AR",
            control_id="A3",
            text="MSH-9: bad | type",
            error_location="MSH-9",
            condition=200,
            timestamp=AT,
        )
        err = read(ack)["ERR"][0]
        assert err["2"] == [{"1": "MSH", "2": "1", "3": "9", "4": "1"}]
        assert err["3"] == [{"1": "200", "2": "Unsupported message type", "3": "HL70357"}]
        assert err["4"] == [{"1": "E"}]
        assert err["8"] == [{"1": "MSH-9: bad | type"}]

    def test_an_error_without_location_says_internal_error(self) -> None:
        err = read(build_ack(parse_message(msg()), "AR", control_id="A", timestamp=AT))["ERR"][0]
        assert err["1"] == [{"4": "207", "4_2": "Application internal error", "4_3": "HL70357"}]

    def test_text_with_delimiters_is_escaped_and_msa_3_is_cut_to_80(self) -> None:
        text = "bad ^ & | ~ \\ value " + "x" * 100
        fields = read(build_ack(parse_message(msg()), "AE", control_id="A", text=text))
        msa_3 = first(fields, "MSA", "3")["1"]
        assert msa_3.startswith("bad ^ & | ~ \\ value x")
        assert len(msa_3) == 80
        assert msa_3.endswith("...")

    def test_v2_3_uses_a_two_component_message_type(self) -> None:
        raw = message(
            "MSH|^~\\&|CHS|RXX|CB|CB|199901011200||ADT^A28|X23|P|2.3",
            "EVN|A28|199901011200",
            "PID|1||123^^^RXX^MR",
            "PV1|1|N",
        )
        fields = read(build_ack(parse_message(raw), "AA", control_id="A", timestamp=AT))
        assert first(fields, "MSH", "9") == {"1": "ACK", "2": "A28"}

    def test_the_timestamp_keeps_its_offset(self) -> None:
        at = datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
        fields = read(build_ack(parse_message(msg()), "AA", control_id="A", timestamp=at))
        assert first(fields, "MSH", "7") == {"1": "20260701093000+0100"}

    def test_a_latin_1_original_gets_a_latin_1_ack(self) -> None:
        raw = msg(MSH_24.replace("UNICODE UTF-8", "8859/1"))
        ack = build_ack(parse_message(raw), "AE", control_id="A", text="Renée", timestamp=AT)
        assert "Renée".encode("latin-1") in ack
        assert first(read(ack), "MSH", "18") == {"1": "8859/1"}

    def test_an_unknown_code_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not one of"):
            build_ack(parse_message(msg()), "OK", control_id="A")


class TestBrokenOriginals:
    def test_a_message_without_msh_still_gets_an_ar(self, sample_messages: list[bytes]) -> None:
        fields = read(build_ack(sample_messages[48], "AR", control_id="A9", text="no MSH"))
        assert first(fields, "MSA", "1") == {"1": "AR"}
        assert "2" not in fields["MSA"]
        assert first(fields, "MSH", "12") == {"1": "2.4"}

    def test_a_readable_msh_is_used_even_when_the_rest_is_garbage(self) -> None:
        raw = b"MSH|^~\\&|APP|FAC|CB|CBF|2025||ADT^A08|C77|T|2.5\r\x00\xff garbage"
        fields = read(build_ack(raw, "AR", control_id="A", text="binary data"))
        assert [first(fields, "MSH", p)["1"] for p in ("3", "4", "5", "6")] == [
            "CB",
            "CBF",
            "APP",
            "FAC",
        ]
        assert (first(fields, "MSH", "11")["1"], first(fields, "MSA", "2")["1"]) == ("T", "C77")

    def test_unusable_separators_fall_back_to_the_defaults(self) -> None:
        fields = read(build_ack(b"MSH\x00\x01junk", "AR", control_id="A"))
        assert first(fields, "MSA", "1") == {"1": "AR"}

    def test_build_error_ack_reports_the_parse_error(self) -> None:
        raw = msg(MSH_ORIGINAL.replace("ADT^A01^ADT_A01", "ORU^R01"))
        with pytest.raises(Hl7Error) as info:
            parse_message(raw)
        fields = read(build_error_ack(raw, info.value, control_id="E1", timestamp=AT))
        assert first(fields, "MSA", "1") == {"1": "AR"}
        assert first(fields, "MSA", "3")["1"].startswith("MSH-9: message type 'ORU'")
        assert fields["ERR"][0]["1"][0]["1"] == "MSH"
        assert fields["ERR"][0]["1"][0]["4"] == "200"

    def test_a_content_error_is_ae_and_ce_in_enhanced_mode(self) -> None:
        error = Hl7Error("unknown segment", field="P1D")
        assert read(build_error_ack(msg(MSH_ORIGINAL), error, control_id="E"))["MSA"]["1"] == [
            {"1": "AE"}
        ]
        assert read(build_error_ack(msg(), error, control_id="E"))["MSA"]["1"] == [{"1": "CE"}]


class TestHl7apyAcceptsOurAcks:
    @pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"])
    @pytest.mark.parametrize("code", ["AA", "AE", "AR", "CA", "CE", "CR"])
    def test_the_ack_is_a_valid_ack_structure(self, version: str, code: str) -> None:
        ack = build_ack(
            parse_message(msg(version=version)),
            code,
            control_id="V1",
            text="PID-3: reason",
            error_location="PID-3" if code not in ("AA", "CA") else None,
            timestamp=AT,
        )
        # Built by name: before v2.3.1 MSH-9 has no structure component to find it by.
        parsed = Message("ACK", version=version, validation_level=VALIDATION_LEVEL.TOLERANT)
        encoding = {
            "FIELD": "|",
            "COMPONENT": "^",
            "REPETITION": "~",
            "ESCAPE": "\\",
            "SUBCOMPONENT": "&",
            "SEGMENT": "\r",
        }
        parsed.children = parse_segments(
            ack.decode().rstrip("\r"),
            version,
            encoding,
            VALIDATION_LEVEL.TOLERANT,
            parsed.reference,
            True,
        )
        assert parsed.validate()
        assert parsed.msa.msa_1.to_er7() == code
        assert parsed.msa.msa_2.to_er7() == "CTRL1"


class TestModes:
    def test_original_mode_codes(self) -> None:
        parsed = parse_message(msg(MSH_ORIGINAL))
        assert not is_enhanced_mode(parsed)
        assert [ack_code(parsed, o) for o in Outcome] == ["AA", "AE", "AR", "AR"]

    def test_enhanced_mode_commit_codes(self) -> None:
        parsed = parse_message(msg())  # MSH-15 AL, MSH-16 NE
        assert is_enhanced_mode(parsed)
        assert [ack_code(parsed, o) for o in Outcome] == ["CA", "CE", "CR", "CE"]
        assert ack_code(parsed, Outcome.ACCEPTED, application=True) == "AA"

    @pytest.mark.parametrize(
        ("msh_15", "accepted", "failed"),
        [("AL", True, True), ("NE", False, False), ("ER", False, True), ("SU", True, False)],
    )
    def test_msh_15_decides_the_commit_ack(self, msh_15: str, accepted: bool, failed: bool) -> None:
        header = salvage_header(msg(MSH_24.replace("|AL|NE|", f"|{msh_15}|NE|")))
        assert wants_commit_ack(header, Outcome.ACCEPTED) is accepted
        assert wants_commit_ack(header, Outcome.FAILED) is failed

    @pytest.mark.parametrize(
        ("msh_16", "accepted", "error"),
        [("AL", True, True), ("NE", False, False), ("ER", False, True), ("SU", True, False)],
    )
    def test_msh_16_decides_the_application_ack(
        self, msh_16: str, accepted: bool, error: bool
    ) -> None:
        header = salvage_header(msg(MSH_24.replace("|AL|NE|", f"|AL|{msh_16}|")))
        assert wants_application_ack(header, Outcome.ACCEPTED) is accepted
        assert wants_application_ack(header, Outcome.ERROR) is error

    def test_original_mode_always_answers_and_never_sends_a_later_ack(self) -> None:
        header = salvage_header(msg(MSH_ORIGINAL))
        assert wants_commit_ack(header, Outcome.ERROR)
        assert not wants_application_ack(header, Outcome.ACCEPTED)
