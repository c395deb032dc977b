"""The JSON lines reader: the committed sample, bad lines by hand, and arbitrary bytes."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.asc import KINDS, parse_jsonl, read_jsonl
from adapters.base import AdapterError, SourceRecord


def parse(*lines: bytes, kind: str = "person") -> list[SourceRecord | AdapterError]:
    return list(parse_jsonl(lines, kind=kind, name="persons.jsonl"))


def person(**fields: Any) -> bytes:
    row = {
        "person_id": "ASC0000001",
        "given_name": "Ann",
        "updated_at": "2026-01-02T09:30:00+00:00",
    }
    row.update(fields)
    return json.dumps(row, ensure_ascii=False).encode() + b"\n"


def only_error(results: list[SourceRecord | AdapterError]) -> AdapterError:
    assert len(results) == 1
    assert isinstance(results[0], AdapterError), results[0]
    return results[0]


class TestSample:
    def test_every_row_parses_except_the_truncated_ones(
        self, sample_asc: Path, manifest: dict[str, Any]
    ) -> None:
        truncated = {
            f"{Path(r['file']).name}:{r['line']}"
            for r in manifest["invalid_rows"]
            if r["file"].startswith("asc/") and r["kind"] == "truncated_json"
        }
        assert truncated, "the sample should hold at least one truncated row"
        errors: list[AdapterError] = []
        for kind in KINDS.values():
            path = sample_asc / f"{kind.collection}.jsonl"
            results = list(read_jsonl(path))
            records = [r for r in results if isinstance(r, SourceRecord)]
            errors += [r for r in results if isinstance(r, AdapterError)]
            assert len(results) == manifest["counts"][f"asc/{path.name}"]
            assert {r.kind for r in records} == {kind.name}
        assert {e.origin for e in errors} == truncated
        for error in errors:
            assert str(error).startswith(f"{error.origin}: broken JSON")
            assert error.raw
            assert not error.raw.endswith(b"\n")

    def test_other_invalid_rows_are_records_for_the_mapping_to_judge(
        self, sample_asc: Path, manifest: dict[str, Any]
    ) -> None:
        spoiled = [
            r for r in manifest["invalid_rows"] if r["file"].startswith("asc/") and r["field"]
        ]
        assert spoiled
        for row in spoiled:
            path = sample_asc / Path(row["file"]).name
            found = [r for r in read_jsonl(path) if r.origin == f"{path.name}:{row['line']}"]
            assert len(found) == 1
            assert isinstance(found[0], SourceRecord)
            assert row["field"] in found[0].fields

    def test_records_carry_id_version_origin_and_raw(self, sample_asc: Path) -> None:
        path = sample_asc / "persons.jsonl"
        first_line = path.read_bytes().split(b"\n", 1)[0]
        record = next(read_jsonl(path))
        assert isinstance(record, SourceRecord)
        row = json.loads(first_line)
        assert (record.system, record.kind) == ("asc", "person")
        assert record.id == row["person_id"]
        assert record.version == row["updated_at"]
        assert record.fields == row
        assert record.raw == first_line
        assert record.origin == "persons.jsonl:1"

    def test_counts_per_kind_match_the_manifest(
        self, sample_asc: Path, manifest: dict[str, Any]
    ) -> None:
        truncated = Counter(
            Path(r["file"]).name
            for r in manifest["invalid_rows"]
            if r["file"].startswith("asc/") and r["kind"] == "truncated_json"
        )
        for kind in KINDS.values():
            name = f"{kind.collection}.jsonl"
            records = [r for r in read_jsonl(sample_asc / name) if isinstance(r, SourceRecord)]
            assert len(records) == manifest["counts"][f"asc/{name}"] - truncated[name]


class TestLines:
    def test_streams_one_line_at_a_time(self) -> None:
        # An endless input: only a reader that holds one line at a time can yield from it.
        endless = itertools.repeat(person())
        first = list(itertools.islice(parse_jsonl(endless, kind="person", name="p.jsonl"), 3))
        assert [r.origin for r in first] == ["p.jsonl:1", "p.jsonl:2", "p.jsonl:3"]

    def test_blank_lines_are_skipped_and_line_numbers_kept(self) -> None:
        results = parse(b"\n", person(), b"   \r\n", person(person_id="ASC0000002"))
        assert [r.origin for r in results] == ["persons.jsonl:2", "persons.jsonl:4"]

    def test_byte_order_mark_on_the_first_line_is_tolerated(self) -> None:
        (record,) = parse(b"\xef\xbb\xbf" + person())
        assert isinstance(record, SourceRecord)
        assert record.raw.startswith(b"{")

    def test_crlf_line_ends_are_not_part_of_raw(self) -> None:
        (record,) = parse(person().replace(b"\n", b"\r\n"))
        assert isinstance(record, SourceRecord)
        assert record.raw == person().rstrip(b"\n")

    def test_invalid_utf8_spoils_only_its_line(self) -> None:
        bad = b'{"person_id":"ASC1","given_name":"\xff"}\n'
        results = parse(person(), bad, person(person_id="ASC0000003"))
        assert [type(r) for r in results] == [SourceRecord, AdapterError, SourceRecord]
        error = results[1]
        assert isinstance(error, AdapterError)
        assert str(error) == "persons.jsonl:2: invalid UTF-8 at byte 35"
        assert error.raw == bad.rstrip(b"\n")

    def test_broken_json_names_file_line_and_column(self) -> None:
        error = only_error(parse(b'{"person_id": "ASC1",'))
        assert str(error).startswith("persons.jsonl:1: broken JSON (")
        assert "column" in str(error)
        assert error.origin == "persons.jsonl:1"

    def test_a_line_that_is_not_an_object_is_an_error(self) -> None:
        error = only_error(parse(b'["ASC1"]'))
        assert str(error) == "persons.jsonl:1: expected a JSON object, got an array"

    def test_missing_id_field_is_named(self) -> None:
        error = only_error(parse(b'{"given_name": "Ann"}'))
        assert error.field == "person_id"
        assert str(error) == "persons.jsonl:1: person field 'person_id' is missing"

    @pytest.mark.parametrize("value", [None, "", "   "])
    def test_empty_id_is_an_error(self, value: str | None) -> None:
        error = only_error(parse(person(person_id=value)))
        assert error.field == "person_id"
        assert str(error).endswith("'person_id' is empty")

    def test_id_of_the_wrong_type_is_an_error(self) -> None:
        error = only_error(parse(person(person_id=1234567)))
        assert str(error).endswith("'person_id' must be a string, got a number")

    def test_updated_at_of_the_wrong_type_is_an_error(self) -> None:
        error = only_error(parse(person(updated_at=20260102)))
        assert error.field == "updated_at"

    def test_missing_updated_at_gives_no_version(self) -> None:
        (record,) = parse(b'{"person_id": "ASC1"}')
        assert isinstance(record, SourceRecord)
        assert record.version is None

    def test_error_messages_never_quote_values(self) -> None:
        error = only_error(parse(person(person_id=["Secret Name"])))
        assert "Secret" not in str(error)
        assert b"Secret" in error.raw

    @pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
    def test_non_json_numbers_are_rejected(self, constant: bytes) -> None:
        error = only_error(parse(b'{"person_id": "ASC1", "x": ' + constant + b"}"))
        assert "broken JSON" in str(error)

    def test_nesting_too_deep_for_the_parser_is_an_error(self) -> None:
        error = only_error(parse(b'{"person_id": "ASC1", "x": ' + b"[" * 100_000 + b"}"))
        assert "broken JSON" in str(error)

    def test_escaped_lone_surrogate_is_an_error_naming_the_field(self) -> None:
        error = only_error(parse(b'{"person_id": "ASC1", "notes": ["ok", "\\ud800"]}'))
        assert error.field == "notes[1]"

    def test_escaped_surrogate_pair_is_text(self) -> None:
        (record,) = parse(b'{"person_id": "ASC1", "given_name": "\\ud83d\\ude00"}')
        assert isinstance(record, SourceRecord)
        assert record.fields["given_name"] == "\U0001f600"

    def test_kind_comes_from_the_file_name_unless_given(self, tmp_path: Path) -> None:
        path = tmp_path / "export.jsonl"
        path.write_bytes(b'{"carer_id": "CAR1"}\n')
        with pytest.raises(AdapterError, match=r"unknown ASC export file 'export\.jsonl'"):
            list(read_jsonl(path))
        (record,) = read_jsonl(path, kind="carer")
        assert isinstance(record, SourceRecord)
        assert (record.kind, record.id) == ("carer", "CAR1")

    def test_unreadable_file_is_an_adapter_error(self, tmp_path: Path) -> None:
        with pytest.raises(AdapterError, match=r"persons.jsonl: cannot read"):
            list(read_jsonl(tmp_path / "persons.jsonl"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


class TestProperties:
    @settings(max_examples=200)
    @given(
        st.lists(
            st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()),
            max_size=6,
        )
    )
    def test_any_bytes_give_records_or_adapter_errors(self, lines: list[bytes]) -> None:
        results = list(parse_jsonl(lines, kind="service", name="services.jsonl"))
        assert all(isinstance(r, SourceRecord | AdapterError) for r in results)
        assert len(results) <= len(lines)

    @given(
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1).filter(str.strip),
        st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    )
    def test_json_shaped_rows_read_back_equal(self, record_id: str, extra: dict[str, Any]) -> None:
        row = {**extra, "assessment_id": record_id}
        line = json.dumps(row, ensure_ascii=False).encode()
        (record,) = parse_jsonl([line + b"\n"], kind="assessment", name="assessments.jsonl")
        assert isinstance(record, SourceRecord), record
        assert record.fields == row
        assert record.id == record_id
