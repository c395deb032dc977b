"""The CSV reader and writer: edge cases by hand, the sample round trip, and properties."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.asc import KINDS, get_kind, parse_csv, read_csv, read_jsonl, write_csv
from adapters.asc.csvio import decode_cell
from adapters.base import AdapterError, SourceRecord

HEADER = b"person_id,given_name,sensitive_address,accessibility_needs,updated_at\r\n"


def parse(text: bytes, kind: str = "person") -> list[SourceRecord | AdapterError]:
    lines = text.splitlines(keepends=True)
    return list(parse_csv(lines, kind=kind, name="persons.csv"))


def records(results: list[SourceRecord | AdapterError]) -> list[SourceRecord]:
    assert all(isinstance(r, SourceRecord) for r in results), results
    return [r for r in results if isinstance(r, SourceRecord)]


class TestReadCsv:
    def test_streams_one_record_at_a_time(self) -> None:
        # An endless input: only a reader that holds one record at a time can yield from it.
        endless = itertools.chain([HEADER], itertools.repeat(b"ASC1,Ann,,,t\r\n"))
        first = list(itertools.islice(parse_csv(endless, kind="person", name="p.csv"), 3))
        assert [r.origin for r in first] == ["p.csv:2", "p.csv:3", "p.csv:4"]

    def test_cells_become_json_fields(self) -> None:
        (record,) = records(parse(HEADER + b"ASC1,Ann,true,large_print;easy_read,2026-01-02\r\n"))
        assert record.fields == {
            "person_id": "ASC1",
            "given_name": "Ann",
            "sensitive_address": True,
            "accessibility_needs": ["large_print", "easy_read"],
            "updated_at": "2026-01-02",
        }
        assert (record.kind, record.id, record.version) == ("person", "ASC1", "2026-01-02")
        assert record.origin == "persons.csv:2"
        assert record.raw == b"ASC1,Ann,true,large_print;easy_read,2026-01-02"

    def test_quoted_fields_keep_commas_quotes_and_newlines(self) -> None:
        text = HEADER + b'ASC1,"O\'Neil, ""Annie""\r\nsecond line",no,,x\r\nASC2,Bo,no,,y\r\n'
        first, second = records(parse(text))
        assert first.fields["given_name"] == 'O\'Neil, "Annie"\r\nsecond line'
        assert first.origin == "persons.csv:2"
        assert first.raw == b'ASC1,"O\'Neil, ""Annie""\r\nsecond line",no,,x'
        # The quoted newline took a line, so the next record starts on line 4.
        assert second.origin == "persons.csv:4"

    def test_byte_order_mark_is_not_part_of_the_first_column_name(self) -> None:
        (record,) = records(parse(b"\xef\xbb\xbf" + HEADER + b"ASC1,Ann,,,\r\n"))
        assert "person_id" in record.fields

    def test_blank_lines_are_skipped_and_line_numbers_kept(self) -> None:
        text = b"\r\n" + HEADER + b"\r\n  \r\n,,,,\r\nASC1,Ann,,,\r\n\r\n"
        (record,) = records(parse(text))
        assert record.origin == "persons.csv:6"

    def test_lf_and_crlf_line_ends_read_alike(self) -> None:
        crlf = parse(HEADER + b"ASC1,Ann,y,,t\r\n")
        lf = parse(HEADER.replace(b"\r\n", b"\n") + b"ASC1,Ann,y,,t\n")
        assert [r.fields for r in records(crlf)] == [r.fields for r in records(lf)]

    def test_wrong_column_count_names_line_and_counts_and_the_rest_go_on(self) -> None:
        results = parse(HEADER + b"ASC1,Ann,no,\r\nASC2,Bo,no,,t\r\n")
        error, record = results
        assert isinstance(error, AdapterError)
        assert str(error) == "persons.csv:2: expected 5 columns as in the header, found 4"
        assert error.raw == b"ASC1,Ann,no,"
        assert isinstance(record, SourceRecord)
        assert record.id == "ASC2"

    @pytest.mark.parametrize(
        ("cell", "value"),
        [
            ("true", True),
            ("TRUE", True),
            ("Yes", True),
            ("y", True),
            ("1", True),
            ("false", False),
            ("no", False),
            ("N", False),
            ("0", False),
            (" 0 ", False),
            ("", None),
        ],
    )
    def test_boolean_spellings(self, cell: str, value: bool | None) -> None:
        assert decode_cell("bool", cell) is value

    def test_bad_boolean_is_an_error_naming_the_field_not_the_value(self) -> None:
        (error,) = parse(HEADER + b"ASC1,Ann,maybe,,t\r\n")
        assert isinstance(error, AdapterError)
        assert error.field == "sensitive_address"
        assert str(error) == (
            "persons.csv:2: field 'sensitive_address' is not a boolean"
            " (expected true/false, yes/no, y/n or 1/0)"
        )
        assert "maybe" not in str(error)

    @pytest.mark.parametrize(
        ("cell", "value"),
        [
            ("", []),
            ("large_print", ["large_print"]),
            (" a ; b ;", ["a", "b"]),
            ("a;;b", ["a", "b"]),
        ],
    )
    def test_list_cells_are_semicolon_separated(self, cell: str, value: list[str]) -> None:
        assert decode_cell("list", cell) == value

    @pytest.mark.parametrize(
        ("cell", "value"),
        [("5", 5), ("10.5", 10.5), ("-2", -2), ("1e3", 1000.0), (" 7 ", 7), ("", None)],
    )
    def test_number_cells_read_as_json_numbers(self, cell: str, value: float | None) -> None:
        result = decode_cell("number", cell)
        assert result == value
        assert type(result) is type(value)

    @pytest.mark.parametrize("cell", ["ten", "1_000", "١٢", "1e999", "nan", "9" * 5000])
    def test_bad_numbers_are_errors(self, cell: str) -> None:
        with pytest.raises(ValueError, match="number"):
            decode_cell("number", cell)

    def test_text_is_kept_verbatim_and_empty_cells_are_null(self) -> None:
        header = b"contact_id,outcome_date,reason,team_id,updated_at\n"
        (record,) = records(parse(header + b"ACT1,31/02/2025,  spaced  ,,t\n", kind="contact"))
        assert record.fields["outcome_date"] == "31/02/2025"
        assert record.fields["reason"] == "  spaced  "
        assert record.fields["team_id"] is None

    def test_invalid_utf8_spoils_only_its_row(self) -> None:
        results = parse(HEADER + b"ASC1,\xffnn,,,t\nASC2,Bo,,,t\n")
        error, record = results
        assert isinstance(error, AdapterError)
        assert str(error) == "persons.csv:2: field 'given_name' has invalid UTF-8"
        assert error.raw == b"ASC1,\xffnn,,,t"
        assert isinstance(record, SourceRecord)

    def test_stray_quote_is_an_error_and_the_rest_go_on(self) -> None:
        results = parse(HEADER + b'ASC1,"Ann"x,,,t\nASC2,Bo,,,t\n')
        error, record = results
        assert isinstance(error, AdapterError)
        assert str(error).startswith("persons.csv:2: malformed CSV:")
        assert isinstance(record, SourceRecord)
        assert record.origin == "persons.csv:3"

    def test_missing_id_cell_is_an_error(self) -> None:
        (error,) = parse(HEADER + b",Ann,,,t\n")
        assert isinstance(error, AdapterError)
        assert error.field == "person_id"

    @pytest.mark.parametrize(
        ("header", "problem"),
        [
            (b"given_name,updated_at\n", "has no 'person_id' column (the person id)"),
            (b"person_id,x,x\n", "names column 'x' twice"),
            (b"person_id,,x\n", "column 2 has no name"),
            (b"person_id,\xff\n", "column 2 has invalid UTF-8 in its name"),
        ],
    )
    def test_a_broken_header_gives_one_error_and_ends_the_file(
        self, header: bytes, problem: str
    ) -> None:
        (error,) = parse(header + b"ASC1,a,b\nASC2,a,b\n")
        assert isinstance(error, AdapterError)
        assert str(error) == f"persons.csv:1: CSV header {problem}"

    def test_unknown_columns_are_kept_as_text(self) -> None:
        (record,) = records(parse(b"person_id,local_flag\nASC1,1\n"))
        assert record.fields == {"person_id": "ASC1", "local_flag": "1"}

    def test_read_csv_takes_the_kind_from_the_file_name(self, tmp_path: Path) -> None:
        path = tmp_path / "carers.csv"
        path.write_bytes(b"carer_id,hours_caring_per_week\nCAR1,35\n")
        (record,) = read_csv(path)
        assert isinstance(record, SourceRecord)
        assert (record.kind, record.fields["hours_caring_per_week"]) == ("carer", 35)


class TestWriteCsv:
    def test_sample_round_trips_through_csv(self, sample_asc: Path, tmp_path: Path) -> None:
        for kind in KINDS.values():
            from_json = [
                r
                for r in read_jsonl(sample_asc / f"{kind.collection}.jsonl")
                if isinstance(r, SourceRecord)
            ]
            path = tmp_path / f"{kind.collection}.csv"
            assert write_csv(kind.name, (r.fields for r in from_json), path) == len(from_json)
            from_csv = list(read_csv(path))
            assert [r.fields for r in records(from_csv)] == [r.fields for r in from_json]
            assert [(r.id, r.version) for r in records(from_csv)] == [
                (r.id, r.version) for r in from_json
            ]

    def test_writes_typed_cells(self, tmp_path: Path) -> None:
        row = {
            "service_id": "SRV1",
            "planned_units_per_week": 10.5,
            "unit_cost": None,
            "provider_name": 'Brightside, "Home" Care',
            "updated_at": "2026-10-05T17:35:00+01:00",
        }
        path = tmp_path / "services.csv"
        write_csv("service", [row], path)
        assert path.read_bytes() == (
            b"service_id,planned_units_per_week,unit_cost,provider_name,updated_at\r\n"
            b'SRV1,10.5,,"Brightside, ""Home"" Care",2026-10-05T17:35:00+01:00\r\n'
        )

    def test_no_rows_writes_a_header(self, tmp_path: Path) -> None:
        path = tmp_path / "consents.csv"
        assert write_csv("consent", [], path) == 0
        assert path.read_bytes() == b"consent_id,updated_at\r\n"

    @pytest.mark.parametrize(
        ("row", "problem"),
        [
            ({"person_id": "A", "x": {"nested": 1}}, "column 'x' is a text column"),
            ({"person_id": "A", "x": ""}, "empty string"),
            ({"person_id": "A", "x": 5}, "a number would read back as text"),
            ({"person_id": "A", "accessibility_needs": ["a;b"]}, "list items"),
            ({"person_id": "A", "accessibility_needs": None}, "cannot hold null"),
            ({"person_id": "A", "sensitive_address": "yes"}, "boolean column"),
            ({"person_id": ""}, "'person_id' must be non-blank text"),
        ],
    )
    def test_refuses_what_would_not_read_back_equal(
        self, tmp_path: Path, row: dict[str, Any], problem: str
    ) -> None:
        with pytest.raises(ValueError, match=problem):
            write_csv("person", [row], tmp_path / "persons.csv")

    def test_rows_must_share_the_header(self, tmp_path: Path) -> None:
        rows = [{"person_id": "A"}, {"person_id": "B", "extra": "x"}]
        with pytest.raises(ValueError, match="row 2 has different fields"):
            write_csv("person", rows, tmp_path / "persons.csv")


def _text(min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=min_size, max_size=20)


_list_item = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=";"), min_size=1, max_size=10
).filter(lambda s: s == s.strip())


@st.composite
def csv_rows(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """Draw a kind and rows of it holding values CSV can carry, typed by its columns."""
    kind = draw(st.sampled_from(list(KINDS.values())))
    extra = draw(
        st.lists(
            _text(1).filter(lambda c: c != kind.id_field and not c.startswith("\ufeff")),
            max_size=3,
            unique=True,
        )
    )
    columns = [kind.id_field, *kind.columns, *extra]
    columns = list(dict.fromkeys(columns))
    by_type = {
        "text": st.none() | _text(1),
        "bool": st.none() | st.booleans(),
        "number": st.none() | st.integers() | st.floats(allow_nan=False, allow_infinity=False),
        "list": st.lists(_list_item, max_size=3),
    }
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        row: dict[str, Any] = {}
        for column in columns:
            if column == kind.id_field:
                row[column] = draw(_text(1).filter(str.strip))
            else:
                row[column] = draw(by_type[kind.column_type(column)])
        rows.append(row)
    return kind.name, rows


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(csv_rows())
    def test_rows_written_as_jsonl_and_csv_read_back_equal(
        self, drawn: tuple[str, list[dict[str, Any]]]
    ) -> None:
        kind, rows = drawn
        collection = get_kind(kind).collection
        with tempfile.TemporaryDirectory() as tmp:
            jsonl = Path(tmp) / f"{collection}.jsonl"
            jsonl.write_bytes(
                b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)
            )
            csv = Path(tmp) / f"{collection}.csv"
            write_csv(kind, rows, csv)
            from_jsonl = records(list(read_jsonl(jsonl)))
            from_csv = records(list(read_csv(csv)))
        assert [r.fields for r in from_csv] == rows
        assert [r.fields for r in from_jsonl] == rows

    @settings(max_examples=200)
    @given(st.lists(st.binary(max_size=60), max_size=6), st.booleans())
    def test_any_bytes_give_records_or_adapter_errors(
        self, lines: list[bytes], with_header: bool
    ) -> None:
        if with_header:
            lines = [HEADER, *lines]
        results = list(parse_csv(lines, kind="person", name="persons.csv"))
        assert all(isinstance(r, SourceRecord | AdapterError) for r in results)
